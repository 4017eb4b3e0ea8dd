package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// OutboxIndex is the name of the sparse global secondary index that lists
// pending commits (see the package documentation).
const OutboxIndex = "outbox"

// maxTableWait bounds how long CreateTable waits for a table to become
// ACTIVE; ctx may end the wait earlier.
const maxTableWait = 10 * time.Minute

// CreateTable creates table with the layout this package needs (partition
// key "stream" of type S, sort key "seq" of type N, and the sparse global
// secondary index OutboxIndex on "ob" (N) and "obt" (N), projecting keys
// only; see the package documentation) and on-demand (PAY_PER_REQUEST)
// billing, then waits with the SDK's TableExists waiter until it is ACTIVE.
//
// It is idempotent: if the table already exists and is ACTIVE, CreateTable
// only checks its layout (one DescribeTable, so a caller without the
// permission to create tables can still use it); if it is being created, it
// waits for it; if it exists with another key schema or without the outbox
// index, it returns a *SchemaError (the package documentation says how to
// add the index to a table made by an earlier version). Operators who manage
// tables with their own tools (CloudFormation, Terraform, the console) need
// not call it. The same table serves the event store and the snapshot
// store.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	if client == nil {
		return errors.New("dynamostore: CreateTable: nil client")
	}
	// An existing ACTIVE table needs no CreateTable call, and so no
	// permission to create tables.
	if out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err == nil &&
		out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
		_, err := checkSchema(table, out.Table, true)
		return err
	}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrStream), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSeq), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String(attrShard), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String(attrPendAt), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrStream), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSeq), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(OutboxIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrPendAt), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
		BillingMode: types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamostore: create table %q: %w", table, err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 500 * time.Millisecond
		o.MaxDelay = 10 * time.Second
	})
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, maxTableWait)
	if err != nil {
		return fmt.Errorf("dynamostore: wait for table %q: %w", table, err)
	}
	_, err = checkSchema(table, out.Table, true)
	return err
}

// describe reads the table's description and checks its layout; it reports
// whether the table has the outbox index, which is an error only if
// needIndex.
func describe(ctx context.Context, client *dynamodb.Client, table string, needIndex bool) (bool, error) {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return false, fmt.Errorf("dynamostore: describe table %q: %w", table, err)
	}
	return checkSchema(table, out.Table, needIndex)
}

// checkSchema verifies the key schema (partition key "stream" of type S,
// sort key "seq" of type N, nothing else in the key) and looks for the
// outbox index, reporting whether the table has it. A missing index is an
// error only if needIndex; an index of that name with another key schema
// always is.
func checkSchema(table string, desc *types.TableDescription, needIndex bool) (bool, error) {
	if desc == nil {
		return false, &SchemaError{Table: table, Problem: "no table description"}
	}
	hash, rng := keyNames(desc.KeySchema)
	switch {
	case hash != attrStream:
		return false, &SchemaError{Table: table, Problem: fmt.Sprintf("partition key is %q, want %q of type S", hash, attrStream)}
	case rng == "":
		return false, &SchemaError{Table: table, Problem: fmt.Sprintf("no sort key, want %q of type N", attrSeq)}
	case rng != attrSeq:
		return false, &SchemaError{Table: table, Problem: fmt.Sprintf("sort key is %q, want %q of type N", rng, attrSeq)}
	}
	defs := map[string]types.ScalarAttributeType{}
	for _, d := range desc.AttributeDefinitions {
		defs[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	if t := defs[attrStream]; t != types.ScalarAttributeTypeS {
		return false, &SchemaError{Table: table, Problem: fmt.Sprintf("partition key %q has type %q, want S", attrStream, t)}
	}
	if t := defs[attrSeq]; t != types.ScalarAttributeTypeN {
		return false, &SchemaError{Table: table, Problem: fmt.Sprintf("sort key %q has type %q, want N", attrSeq, t)}
	}
	for _, ix := range desc.GlobalSecondaryIndexes {
		if aws.ToString(ix.IndexName) != OutboxIndex {
			continue
		}
		hash, rng := keyNames(ix.KeySchema)
		if hash != attrShard || rng != attrPendAt || defs[attrShard] != types.ScalarAttributeTypeN || defs[attrPendAt] != types.ScalarAttributeTypeN {
			return false, &SchemaError{Table: table, Problem: fmt.Sprintf(
				"global secondary index %q is keyed on %q (%s) and %q (%s), want %q (N) and %q (N)",
				OutboxIndex, hash, defs[hash], rng, defs[rng], attrShard, attrPendAt)}
		}
		return true, nil
	}
	if needIndex {
		return false, &SchemaError{Table: table, Problem: fmt.Sprintf(
			"no global secondary index %q for the outbox (add it as the package documentation shows, or open the backend WithoutOutbox)",
			OutboxIndex)}
	}
	return false, nil
}

func keyNames(ks []types.KeySchemaElement) (hash, rng string) {
	for _, k := range ks {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			rng = aws.ToString(k.AttributeName)
		}
	}
	return hash, rng
}
