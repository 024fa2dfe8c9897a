//go:build !race

package bridge

const raceEnabled = false // see race_test.go
