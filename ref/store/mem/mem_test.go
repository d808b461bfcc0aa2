package mem_test

import (
	"testing"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Name: "mem",
		Open: func(*testing.T, string) store.Store { return mem.New() },
	})
}
