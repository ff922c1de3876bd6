// Command etcd is the etcd server at the version k8s.io/kubernetes pins,
// built here because etcd's own main module is not in this dependency graph.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
