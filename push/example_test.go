package push_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/push"
)

// A backend pushes to a client ID, a user, a channel or everyone.
func ExampleClient_Send() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	pc, err := push.New(conn, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := pc.Send(ctx, push.ToClient("phone-1"), map[string]string{"title": "hello"}, nil); err != nil {
		log.Fatal(err)
	}
	res, err := pc.Send(ctx, push.ToUser("alice"), "are you there?", &push.SendOpts{Ack: true, AckWait: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.Acks), "connections acknowledged")
}

// A backend that holds the node's push secret signs connect tokens for
// its devices.
func ExampleSignToken() {
	tok, err := push.SignToken([]byte(os.Getenv("MORTAR_PUSH_SECRET")), push.Claims{
		Client:   "phone-1",
		User:     "alice",
		Channels: []string{"news"},
		Expires:  time.Now().Add(24 * time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok)
}

// A device keeps one long connection, reconnecting and recovering what it
// missed.
func ExampleDevice() {
	ctx := context.Background()
	d, err := push.NewDevice(&push.DeviceConfig{
		URL:    "ws://127.0.0.1:7070/push/ws",
		Token:  os.Getenv("PUSH_TOKEN"),
		OnPush: func(p push.Push) { fmt.Printf("%s %s\n", p.Channel, p.Data) },
		OnRecovery: func(channel string, recovered bool) {
			if !recovered {
				fmt.Println("missed messages on", channel, "- reloading")
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Stop(context.Background())
	if _, err := d.Subscribe(ctx, "news"); err != nil {
		log.Fatal(err)
	}
	<-d.Stopped()
}
