//go:build linux

package sockapi_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/ustack/ustack/sockapi"
	"github.com/ustack/ustack/stack"
)

// An HTTP server and client, both on a userspace stack, through the Go
// net adapters.
func ExampleListenConfig() {
	st, err := stack.New(stack.Config{}) // loopback only
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	s := sockapi.New(st)
	defer s.CloseAll()

	ctx := context.Background()
	l, err := (&sockapi.ListenConfig{Sockets: s}).Listen(ctx, "tcp", "127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the userspace stack")
	})}
	go srv.Serve(l)
	defer srv.Shutdown(ctx)

	tr := &http.Transport{DialContext: (&sockapi.Dialer{Sockets: s}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://127.0.0.1:8080/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK hello from the userspace stack
}
