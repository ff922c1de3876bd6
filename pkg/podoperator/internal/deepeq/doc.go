// Package deepeq compares and hashes values of one Go type by walking their
// memory with a plan built once per type, for sharing equal parts between
// decoded API objects. It is exact where it says equal (same nil-ness, same
// bits), and may say unequal for values that only mean the same (a map of
// non-comparable values, a channel, a function).
package deepeq
