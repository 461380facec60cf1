package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/client"
	"github.com/edgetrack/edgetrack/proto/hamustropb"
)

func Example() {
	const secret = "ultrasafesecret"

	// A stand-in collector on loopback that checks the signature.
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Hamustro-Signature") != client.Sign(r.Header.Get("X-Hamustro-Time"), body, secret) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var c hamustropb.Collection
		if err := proto.Unmarshal(body, &c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, p := range c.GetPayloads() {
			fmt.Printf("collector: %s #%d user %d\n", p.GetEvent(), p.GetNr(), p.GetUserId())
		}
		w.WriteHeader(http.StatusOK) // only 200 makes the SDK delete the events
	}))
	defer collector.Close()

	dir, err := os.MkdirTemp("", "edgetrack-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	tracker, err := client.New(client.Config{
		CollectorURL:   collector.URL,
		SharedSecret:   secret,
		DeviceID:       "device-1",
		ClientID:       "shop-ios",
		SystemVersion:  "17.4",
		ProductVersion: "2.3.0",
		Dir:            dir,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tracker.Close()

	ctx := context.Background()
	if err := tracker.TrackEvent(ctx, "app_open", 0, "", false); err != nil {
		log.Fatal(err)
	}
	if err := tracker.TrackEvent(ctx, "purchase", 42, `{"sku":"A1"}`, false); err != nil {
		log.Fatal(err)
	}
	// Two events are below the default QueueSize of 20: nothing was sent
	// yet. Flush sends them now.
	if err := tracker.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent:", tracker.Stats().Sent)
	// Output:
	// collector: app_open #1 user 0
	// collector: purchase #2 user 42
	// sent: 2
}
