package memstore_test

import (
	"testing"

	"github.com/presenced/presenced/store"
	"github.com/presenced/presenced/store/memstore"
	"github.com/presenced/presenced/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memstore.New() })
}
