package dynamostore

import (
	"bytes"
	"context"
	"hash/crc32"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
)

// clientOpt adjusts the options of a test client.
type clientOpt func(*ddb.Options)

// withHTTP routes the client's requests through h.
func withHTTP(h aws.HTTPClient) clientOpt { return func(o *ddb.Options) { o.HTTPClient = h } }

// withQuickRetries keeps the SDK's standard retryer (same retryable errors,
// same attempt count) but without backoff delays or a retry quota, so tests
// that provoke retries stay fast.
func withQuickRetries() clientOpt {
	return func(o *ddb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			so.RateLimiter = ratelimit.None
		})
	}
}

func withEndpoint(url string) clientOpt {
	return func(o *ddb.Options) { o.BaseEndpoint = aws.String(url) }
}

// newClient returns a client of the test server (skipping or failing the
// test, through testkit, when there is none), made by LocalClient.
func newClient(tb testing.TB, opts ...clientOpt) *ddb.Client {
	tb.Helper()
	endpoint := testkit.Get(tb, testkit.DynamoDBEndpoint)
	fns := make([]func(*ddb.Options), len(opts))
	for i, o := range opts {
		fns[i] = o
	}
	return LocalClient(endpoint, "", fns...)
}

var (
	tableSeq  atomic.Int64
	tableRand = strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	badChars  = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)
)

// tableName returns a table name unique to this test run and test.
func tableName(tb testing.TB) string {
	name := badChars.ReplaceAllString(tb.Name(), "_")
	if len(name) > 180 {
		name = name[len(name)-180:]
	}
	return "es_" + tableRand + "_" + strconv.FormatInt(tableSeq.Add(1), 10) + "_" + name
}

// newTable creates a fresh table with the package's schema and deletes it
// when the test ends.
func newTable(tb testing.TB, client *ddb.Client) string {
	tb.Helper()
	table := tableName(tb)
	if err := CreateTable(context.Background(), client, table); err != nil {
		tb.Fatalf("CreateTable(%s): %v", table, err)
	}
	tb.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
	})
	return table
}

func newBackend(tb testing.TB, client *ddb.Client, opts ...Option) *Backend {
	tb.Helper()
	b, err := NewBackend(context.Background(), client, newTable(tb, client), opts...)
	if err != nil {
		tb.Fatalf("NewBackend: %v", err)
	}
	return b
}

// fault is what proxy does with one request.
type fault int

const (
	pass       fault = iota // forward to the server
	failBefore              // answer with an error without forwarding
	failAfter               // forward, discard the server's answer, answer with an error
	refuseConn              // fail as if the connection dropped, without forwarding
)

// proxy is an aws.HTTPClient in front of the real one. It counts requests
// per operation and injects faults chosen by decide (called with the
// operation name and its 1-based count).
type proxy struct {
	next   aws.HTTPClient
	status int    // status of injected errors
	code   string // __type of injected errors

	mu      sync.Mutex
	counts  map[string]int
	decide  func(op string, n int) fault
	rewrite func(op string, req, resp []byte) []byte // edits answers; nil: none
}

func newProxy(status int, code string, decide func(op string, n int) fault) *proxy {
	return &proxy{next: http.DefaultClient, status: status, code: code, counts: map[string]int{}, decide: decide}
}

func (p *proxy) Do(req *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	p.mu.Lock()
	p.counts[op]++
	n := p.counts[op]
	decide := p.decide
	p.mu.Unlock()
	f := pass
	if decide != nil {
		f = decide(op, n)
	}
	switch f {
	case failBefore:
		return p.injected(req), nil
	case refuseConn:
		return nil, io.ErrUnexpectedEOF
	case failAfter:
		resp, err := p.next.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return p.injected(req), nil
	}
	p.mu.Lock()
	rewrite := p.rewrite
	p.mu.Unlock()
	if rewrite == nil {
		return p.next.Do(req)
	}
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := p.next.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = rewrite(op, reqBody, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	return resp, nil
}

func (p *proxy) setRewrite(f func(op string, req, resp []byte) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite = f
}

func (p *proxy) injected(req *http.Request) *http.Response {
	body := `{"__type":"com.amazonaws.dynamodb.v20120810#` + p.code + `","message":"injected by the test"}`
	return &http.Response{
		Status:        strconv.Itoa(p.status) + " " + http.StatusText(p.status),
		StatusCode:    p.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"test"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

func (p *proxy) count(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[op]
}

func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
}

func (p *proxy) setDecide(f func(op string, n int) fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decide = f
	p.counts = map[string]int{}
}

var testIDs atomic.Int64

// newID returns a commit ID unique to this test run.
func newID() string { return "t-" + tableRand + "-" + strconv.FormatInt(testIDs.Add(1), 10) }

// commitOf returns the commit of records after expected, under a new ID.
func commitOf(s backend.StreamID, expected int64, records []backend.Record) backend.Commit {
	c := backend.Commit{Stream: s, Expected: expected, ID: newID(), Records: make([]backend.Record, len(records))}
	for i, r := range records {
		r.CommitID = c.ID
		c.Records[i] = r
	}
	return c
}

// appendRecs appends records after expected as one commit under a new ID.
func appendRecs(ctx context.Context, b backend.Backend, s backend.StreamID, expected int64, records []backend.Record) error {
	return b.Append(ctx, commitOf(s, expected, records))
}

// newTableWithoutIndex creates a fresh table with the key schema of the
// package but no outbox index (as earlier versions made them), deleted when
// the test ends.
func newTableWithoutIndex(tb testing.TB, client *ddb.Client) string {
	tb.Helper()
	table := tableName(tb)
	_, err := client.CreateTable(context.Background(), &ddb.CreateTableInput{
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
	if err != nil {
		tb.Fatalf("CreateTable(%s): %v", table, err)
	}
	tb.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
	})
	return table
}
