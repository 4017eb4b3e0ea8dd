package main

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/aggregatekit/eventsourcing/stores/dynamostore"
)

// dynamoClient returns a DynamoDB client configured the AWS way
// (environment, ~/.aws), for cfg's region and, if set, endpoint. With an
// endpoint and no AWS_ACCESS_KEY_ID it is a client for a local server
// (DynamoDB Local, dynalite), which accepts any credentials.
func dynamoClient(ctx context.Context, cfg config) (*ddb.Client, error) {
	if cfg.DynamoEndpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		return dynamostore.LocalClient(cfg.DynamoEndpoint, cfg.DynamoRegion), nil
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.DynamoRegion))
	if err != nil {
		return nil, err
	}
	return ddb.NewFromConfig(awsCfg, func(o *ddb.Options) {
		if cfg.DynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoEndpoint)
		}
	}), nil
}
