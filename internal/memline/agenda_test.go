package memline_test

import (
	"testing"

	"github.com/couponq/couponq/couponq/agendatest"
	"github.com/couponq/couponq/internal/memline"
)

func TestAgendaConformance(t *testing.T) {
	agendatest.Run(t, func(t *testing.T) agendatest.Backends {
		q := memline.NewQueue(nil)
		return agendatest.Backends{Agenda: q, Queue: q}
	})
}
