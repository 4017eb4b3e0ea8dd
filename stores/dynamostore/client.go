package dynamostore

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// LocalClient returns a DynamoDB client for a server at endpoint that needs
// no real AWS credentials: DynamoDB Local, dynalite, LocalStack, or the test
// servers of this repository. It is meant for development and tests; for
// AWS itself build the client from your configuration with
// dynamodb.NewFromConfig (config.LoadDefaultConfig), as the package
// example shows.
//
// The client signs requests with static placeholder credentials, uses region
// (us-east-1 if empty; local servers keep one namespace of tables per
// region), and retries as the SDK's standard retryer does (3 attempts,
// throttling and server faults included) but with backoff capped at one
// second and without the retry quota, which a restarted local server would
// otherwise exhaust. optFns adjust the options further, as for
// dynamodb.New.
func LocalClient(endpoint, region string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	if region == "" {
		region = "us-east-1"
	}
	o := dynamodb.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxBackoff = time.Second
			so.RateLimiter = ratelimit.None
		}),
	}
	return dynamodb.New(o, optFns...)
}
