package pushserver

import (
	"maps"
	"testing"
	"time"
)

// TestDirectory follows another node's announcements, notices a lost
// one by its digest, heals from a snapshot and forgets a silent node.
func TestDirectory(t *testing.T) {
	a := newDirectory("a", time.Second) // the announcing node
	b := newDirectory("b", time.Second) // the one following it
	now := time.Unix(1000, 0)
	step := func(events ...[3]string) dirBatch {
		for _, e := range events {
			a.local(e[0], e[1], e[2])
		}
		batch, _ := a.take(true)
		return batch
	}
	if b.apply(step([3]string{"+", "a-1", "phone"}, [3]string{"+", "a-2", "phone"}, [3]string{"+", "a-3", "tv"}), now) {
		t.Fatal("a consistent batch asked for a resync")
	}
	if got := b.locate("phone"); !maps.Equal(got, map[string]int{"a": 2}) {
		t.Errorf("locate(phone) = %v, want a:2", got)
	}
	// A batch is lost: the next digest disagrees.
	step([3]string{"-", "a-3", "tv"})
	if !b.apply(step([3]string{"+", "a-4", "watch"}), now) {
		t.Fatal("a lost batch went unnoticed")
	}
	if b.apply(step(), now) {
		t.Error("a second resync was asked while one is in flight")
	}
	b.replace(dirSnap{Node: "a", Conns: map[string]string{"a-1": "phone", "a-2": "phone", "a-4": "watch"}}, now)
	if b.apply(step(), now) {
		t.Error("the digest still disagrees after the snapshot")
	}
	if got := b.locate("tv"); len(got) != 0 {
		t.Errorf("locate(tv) = %v after its disconnect", got)
	}
	if got := b.locate("watch"); !maps.Equal(got, map[string]int{"a": 1}) {
		t.Errorf("locate(watch) = %v, want a:1", got)
	}
	// Duplicated events do not count twice.
	dup := dirBatch{Node: "a", Events: []dirEvent{{"+", "a-4", "watch"}}, Count: 3, Sum: a.sum}
	b.apply(dup, now)
	if got := b.locate("watch"); got["a"] != 1 {
		t.Errorf("a duplicate connect counted: %v", got)
	}
	// Silent for three intervals: forgotten.
	b.expire(now.Add(3 * time.Second))
	if len(b.locate("phone")) != 1 {
		t.Error("expired a node within three intervals")
	}
	b.expire(now.Add(3*time.Second + time.Millisecond))
	if got := b.locate("phone"); len(got) != 0 || len(b.byClient) != 0 {
		t.Errorf("a silent node is still listed: %v, index %v", got, b.byClient)
	}
}
