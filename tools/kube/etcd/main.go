// Command etcd is etcd's own server command, built from the go.etcd.io/etcd/server/v3 module.
//
// The etcd repository's root module (the usual `go install` target) carries replace lines and
// cannot be built as a dependency; its main only calls etcdmain.Main, as this one does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
