// Package load prints the machine's load average, so that every benchmark's output says under
// what load its figures were taken (figures from a busy machine are not comparable).
package load
