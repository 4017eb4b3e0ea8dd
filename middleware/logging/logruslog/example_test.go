package logruslog_test

import (
	"context"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/logging/logruslog"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

type Visited struct{ Page string }
type Visit struct{ Page string }

type Site struct {
	es.AggregateBase `json:"-"`
	Visits           int
}

func (s *Site) HandleVisit(c Visit) ([]es.Event, error) { return []es.Event{Visited(c)}, nil }
func (s *Site) ReplayVisited(Visited)                   { s.Visits++ }

func ExampleNew() {
	logger := logrus.New()
	logger.SetOutput(os.Stdout)
	logger.SetLevel(logrus.DebugLevel)
	logger.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableSorting: false})
	mw, err := logruslog.New(logger.WithField("service", "web"), logging.WithEventTypes())
	if err != nil {
		fmt.Println(err)
		return
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	registry := es.NewStandardEventRegistry("web")
	_ = registry.RegisterEvent(Visited{})
	site := &Site{}
	site.Initialize("home", registry, store, func() any { return site })
	if err := site.AutomaticWireup(site); err != nil {
		fmt.Println(err)
		return
	}
	logger.SetLevel(logrus.InfoLevel) // only problems from here on
	if err := site.Handle(context.Background(), Visit{Page: "/"}); err != nil {
		fmt.Println(err)
	}
	fmt.Println("visits:", site.Visits)
	// Output:
	// visits: 1
}
