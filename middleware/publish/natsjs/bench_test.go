package nats_test

import (
	"strconv"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/publish/nats"
)

// BenchmarkPublish publishes one commit of 1 or 10 events per iteration and
// waits for the acknowledgements: this package in both modes, against
// hand-written baselines that publish the same bytes with the same message
// IDs (jetstream PublishMsg in a loop, and PublishMsgAsync then wait), without
// headers.
func BenchmarkPublish(b *testing.B) {
	js := server(b)
	for _, size := range []int{1, 10} {
		for _, mode := range []string{"baseline-sync", "baseline-async", "sequential", "pipelined"} {
			b.Run(mode+"/events="+strconv.Itoa(size), func(b *testing.B) {
				_, prefix := uniqueStream(b, js)
				var opts []nats.Option
				opts = append(opts, nats.WithSubjectPrefix(prefix))
				if mode == "sequential" {
					opts = append(opts, nats.WithSequential())
				}
				p, err := nats.New(js, opts...)
				if err != nil {
					b.Fatal(err)
				}
				stream := es.StreamID{AggregateType: "Bench", Key: "k"}
				subject := p.Subject(es.Record{Stream: stream})
				var seq int64
				b.ReportAllocs()
				for b.Loop() {
					msgs := messages(stream, seq+1, int64(size))
					seq += int64(size)
					switch mode {
					case "baseline-sync":
						for _, m := range msgs {
							if _, err := js.PublishMsg(ctx, &natsgo.Msg{Subject: subject, Data: m.Record.Data},
								jetstream.WithMsgID(nats.MsgID(stream, m.Record.Sequence))); err != nil {
								b.Fatal(err)
							}
						}
					case "baseline-async":
						futures := make([]jetstream.PubAckFuture, len(msgs))
						for i, m := range msgs {
							f, err := js.PublishMsgAsync(&natsgo.Msg{Subject: subject, Data: m.Record.Data},
								jetstream.WithMsgID(nats.MsgID(stream, m.Record.Sequence)))
							if err != nil {
								b.Fatal(err)
							}
							futures[i] = f
						}
						for _, f := range futures {
							select {
							case <-f.Ok():
							case err := <-f.Err():
								b.Fatal(err)
							}
						}
					default:
						if err := p.Publish(ctx, msgs); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
