// Command fork measures fork-to-Running: the time for N children forked with
// pkg/fork (Start) to be Running, against creating the same pods directly,
// in the same kwok cluster (testenv ModeCluster), and prints the ratio.
// It does not measure Run's waiting for completion.
package main
