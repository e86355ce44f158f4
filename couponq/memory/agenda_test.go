package memory_test

import (
	"testing"

	"github.com/couponq/couponq/couponq/agendatest"
	"github.com/couponq/couponq/couponq/memory"
)

func TestAgendaConformance(t *testing.T) {
	agendatest.Run(t, func(t *testing.T) agendatest.Backends {
		q := memory.NewQueue(nil)
		return agendatest.Backends{Agenda: q, Queue: q}
	})
}
