package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// maxTableWait bounds how long CreateTable waits for a table to become
// ACTIVE; ctx may end the wait earlier.
const maxTableWait = 10 * time.Minute

// CreateTable creates table with the key schema this package needs
// (partition key "stream" of type S, sort key "seq" of type N; see the
// package documentation) and on-demand (PAY_PER_REQUEST) billing, then waits
// with the SDK's TableExists waiter until it is ACTIVE.
//
// It is idempotent: if the table already exists and is ACTIVE, CreateTable
// only checks its key schema (one DescribeTable, so a caller without the
// permission to create tables can still use it); if it is being created, it
// waits for it; if it exists with another key schema, it
// returns a *SchemaError. Operators who manage tables with their own tools
// (CloudFormation, Terraform, the console) need not call it. The same table
// schema serves the event store and the snapshot store.
func CreateTable(ctx context.Context, client *ddb.Client, table string) error {
	if client == nil {
		return errors.New("dynamodb: CreateTable: nil client")
	}
	// An existing ACTIVE table needs no CreateTable call, and so no
	// permission to create tables.
	if out, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)}); err == nil &&
		out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
		return checkSchema(table, out.Table)
	}
	_, err := client.CreateTable(ctx, &ddb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrStream), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSeq), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrStream), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSeq), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamodb: create table %q: %w", table, err)
	}
	w := ddb.NewTableExistsWaiter(client, func(o *ddb.TableExistsWaiterOptions) {
		o.MinDelay = 500 * time.Millisecond
		o.MaxDelay = 10 * time.Second
	})
	out, err := w.WaitForOutput(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)}, maxTableWait)
	if err != nil {
		return fmt.Errorf("dynamodb: wait for table %q: %w", table, err)
	}
	return checkSchema(table, out.Table)
}

// describeAndCheck reads the table's description and checks its key schema.
func describeAndCheck(ctx context.Context, client *ddb.Client, table string) error {
	out, err := client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("dynamodb: describe table %q: %w", table, err)
	}
	return checkSchema(table, out.Table)
}

// checkSchema verifies the key schema: partition key "stream" (S) and sort
// key "seq" (N), nothing else in the key.
func checkSchema(table string, desc *types.TableDescription) error {
	if desc == nil {
		return &SchemaError{Table: table, Problem: "no table description"}
	}
	var hash, rng string
	for _, k := range desc.KeySchema {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			rng = aws.ToString(k.AttributeName)
		}
	}
	switch {
	case hash != attrStream:
		return &SchemaError{Table: table, Problem: fmt.Sprintf("partition key is %q", hash)}
	case rng == "":
		return &SchemaError{Table: table, Problem: "no sort key"}
	case rng != attrSeq:
		return &SchemaError{Table: table, Problem: fmt.Sprintf("sort key is %q", rng)}
	}
	defs := map[string]types.ScalarAttributeType{}
	for _, d := range desc.AttributeDefinitions {
		defs[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	if t := defs[attrStream]; t != types.ScalarAttributeTypeS {
		return &SchemaError{Table: table, Problem: fmt.Sprintf("partition key %q has type %q", attrStream, t)}
	}
	if t := defs[attrSeq]; t != types.ScalarAttributeTypeN {
		return &SchemaError{Table: table, Problem: fmt.Sprintf("sort key %q has type %q", attrSeq, t)}
	}
	return nil
}
