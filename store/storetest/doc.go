// Package storetest is the conformance suite every store.Store backend
// runs: the same scenarios, the same expectations, whatever the storage.
package storetest
