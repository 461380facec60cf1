// Package bench holds benchmarks that span the edge and the aggregator, each
// beside a baseline measured in the same run, and (in results/) the tables
// `make bench` writes.
package bench
