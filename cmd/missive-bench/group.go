package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/wire"
)

// benchGroup is one group of the group scenario: its id and, for each
// member (by position), the digest of the group devices it sends to
// (section 16.4: every member device but its own).
type benchGroup struct {
	id      []byte
	members fleet
	digests [][]byte
}

// makeGroup makes a group of members, the first its admin, and stores its
// first state on the server (set-group, section 16.3). Every member has a
// single device, reachable, and is not yet reading its frames.
func makeGroup(members fleet) (*benchGroup, error) {
	// Members sorted as the state lists them: by account, bytewise
	// (section 16.2).
	byName := slices.Clone(members)
	slices.SortFunc(byName, func(a, b *device) int { return cmp.Compare(a.account, b.account) })
	admin := members[0]
	list := make([]wire.GroupMember, len(byName))
	for i, d := range byName {
		list[i] = wire.GroupMember{Account: d.account, Role: wire.RoleMember}
		if d == admin {
			list[i].Role = wire.RoleAdmin
		}
	}
	g := &benchGroup{id: make([]byte, wire.GroupIDSize), members: members}
	if _, err := rand.Read(g.id); err != nil {
		return nil, err
	}
	st, err := group.Sign(admin.ik, wire.Address{Account: admin.account, Device: 1}, admin.list, g.id, 1, list,
		"bench", uint64(time.Now().UnixMilli()), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("group state: %w", err)
	}
	var body wire.SignedGroupState
	if err := wire.Unmarshal(st.Signed, &body); err != nil {
		return nil, err
	}
	if err := admin.call(wire.FrameSetGroup, &body, new(wire.Empty)); err != nil {
		return nil, fmt.Errorf("set-group: %w", err)
	}
	for _, sender := range members {
		var devs wire.GroupDevices
		for _, d := range byName {
			if d != sender {
				devs = append(devs, wire.AccountDevices{Account: d.account, Devices: []uint64{1}})
			}
		}
		digest, err := group.Digest(g.id, devs)
		if err != nil {
			return nil, err
		}
		g.digests = append(g.digests, digest)
	}
	return g, nil
}

// envelope returns the group envelope of member k's request id with the
// group message msg (opaque to the server: the bench sends its payload,
// not a sender-key ciphertext).
func (g *benchGroup) envelope(k int, id uint64, msg []byte) *wire.GroupEnvelope {
	d := g.members[k]
	return &wire.GroupEnvelope{
		Version: wire.ProtocolVersion, MessageID: d.messageID(id),
		Sender:  wire.Address{Account: d.account, Device: 1},
		GroupID: g.id, Serial: 1, Digest: g.digests[k], Message: msg,
		Priority: wire.PriorityNormal, TTL: 3600, SentAt: uint64(time.Now().UnixMilli()),
	}
}

// groupMessageFor returns the message length that makes the encoded group
// envelope size bytes long, and that size as it comes out.
func groupMessageFor(size int) (int, int, error) {
	g := &benchGroup{id: make([]byte, wire.GroupIDSize), digests: [][]byte{make([]byte, 32)},
		members: fleet{{i: 1 << 20, account: "b00000000-1000000g-1000"}}}
	return lengthFor(size, payloadHeader+8, func(n int) *wire.GroupEnvelope { return g.envelope(0, 1<<40, make([]byte, n)) })
}

// fanoutWindow frees a sender's window when every member has received its
// message, so that a sender cannot outrun the fan-out: the rate measured
// is that of deliveries, not of acceptance into queues that grow.
type fanoutWindow struct {
	mu    sync.Mutex
	left  map[[2]uint64]int // (sender index, request id): deliveries still to come
	peers map[int]*peer     // by device index
}

func (w *fanoutWindow) sent(sender int, id uint64, n int) {
	w.mu.Lock()
	w.left[[2]uint64{uint64(sender), id}] = n
	w.mu.Unlock()
}

// delivered counts one delivery of a message, given its payload.
func (w *fanoutWindow) delivered(msg []byte) {
	if len(msg) < payloadHeader+8 {
		return
	}
	k := [2]uint64{uint64(binary.BigEndian.Uint32(msg[8:])), binary.BigEndian.Uint64(msg[payloadHeader:])}
	w.mu.Lock()
	n, ok := w.left[k]
	var p *peer
	if ok && n <= 1 {
		delete(w.left, k)
		p = w.peers[int(k[0])]
	} else if ok {
		w.left[k] = n - 1
	}
	w.mu.Unlock()
	if p != nil {
		p.release()
	}
}

// runGroup is the group fan-out scenario: groups of -group-size members,
// every member sending group messages (one ciphertext each, chapter 16) to
// its group at full speed, the server fanning each out to the other
// members' devices; a sender has at most -window messages that some
// member has not yet received. Baseline: the loopback relay fanning the
// same frames out to the same members.
func (b *bench) runGroup(s *scenarioReport) error {
	cfg := b.cfg
	size, k := cfg.groupSize, cfg.groups
	n := size * k
	msgLen, envSize, err := groupMessageFor(cfg.size)
	if err != nil {
		return err
	}
	f, err := makeFleet(b.run+"g", n, b.srcs)
	if err != nil {
		return err
	}
	b.prog.phase(nil, "group: registering %d devices", n)
	if err := f.setup(context.Background(), b.t, true, b.prog); err != nil {
		f.close()
		return err
	}
	b.prog.phase(nil, "group: creating %d groups of %d", k, size)
	groups := make([]*benchGroup, k)
	if err := parallel(k, func(j int) error {
		g, err := makeGroup(f[j*size : (j+1)*size])
		groups[j] = g
		return err
	}); err != nil {
		f.close()
		return err
	}

	fw := &fanoutWindow{left: map[[2]uint64]int{}, peers: map[int]*peer{}}
	m := &messaging{b: b, fleet: f, tr: newTraffic(msgLen)}
	m.tr.fanout, m.tr.perMessage = fw.delivered, size-1
	for _, d := range f {
		p := m.tr.start(d, cfg.window)
		m.peers = append(m.peers, p)
		fw.mu.Lock()
		fw.peers[d.i] = p
		fw.mu.Unlock()
	}
	defer m.close()
	send := func(ctx context.Context, i int, at int64) error {
		g, member := groups[i/size], i%size
		return m.peers[i].sendWith(ctx, at, func(id uint64, msg []byte) (uint64, wire.Message) {
			binary.BigEndian.PutUint64(msg[payloadHeader:], id)
			fw.sent(f[i].i, id, size-1)
			return wire.FrameSendGroup, g.envelope(member, id, msg)
		})
	}
	all := make([]int, n)
	fan := make([][]int, n)
	for i := range all {
		all[i] = i
		for j := (i / size) * size; j < (i/size+1)*size; j++ {
			if j != i {
				fan[i] = append(fan[i], j)
			}
		}
	}
	sizes := groupFrameSizes(groups[0], msgLen)

	var delRuns, msgRuns, relayRuns, p99Runs []float64
	var costRuns []cost
	lat, relayLat := new(histogram), new(histogram)
	s.Counts = map[string]counts{}
	var halfRuns []float64
	halfLat := new(histogram)
	for run := 1; run <= cfg.runs; run++ {
		r := m.phase(fmt.Sprintf("group run %d/%d: full speed", run, cfg.runs), all, send, sendPeriod, cfg.window, false, cfg.warmup, cfg.duration)
		delRuns = append(delRuns, r.delivered)
		msgRuns = append(msgRuns, r.accepted)
		costRuns = append(costRuns, r.cost)
		lat.Merge(r.endToEnd)
		s.Counts["full speed"] = addCounts(s.Counts["full speed"], r.counts)
		if !r.settled {
			s.Notes = append(s.Notes, fmt.Sprintf("run %d: not every group message was answered and delivered to every member within 30 s", run))
		}
		b.prog.phase(nil, "group run %d/%d: loopback relay baseline", run, cfg.runs)
		rr, err := relayPhase(fan, sizes, cfg.window, cfg.warmup, cfg.duration, b.prog)
		if err != nil {
			return fmt.Errorf("relay baseline: %w", err)
		}
		relayRuns = append(relayRuns, rr.rate)
		relayLat.Merge(rr.lat)
		// Latency at half the delivery rate reached, open loop: the
		// members together send half the messages per second.
		msgRate := median(delRuns) / 2 / float64(size-1)
		period := time.Duration(float64(n) / max(msgRate, 1e-3) * float64(time.Second))
		h := m.phase(fmt.Sprintf("group run %d/%d: latency at %s deliveries/s", run, cfg.runs, number(median(delRuns)/2)), all, send, max(period, sendPeriod), inflightRing, true, cfg.warmup, cfg.duration)
		halfRuns = append(halfRuns, h.delivered)
		p99Runs = append(p99Runs, ms(h.endToEnd.Quantile(0.99)))
		halfLat.Merge(h.endToEnd)
		s.Counts["latency"] = addCounts(s.Counts["latency"], h.counts)
		if !h.settled {
			s.Notes = append(s.Notes, fmt.Sprintf("run %d: not every group message was answered and delivered to every member within 30 s after the latency phase", run))
		}
	}
	s.Figures = append(s.Figures,
		newFigure("group fan-out deliveries, full speed", "msg/s", delRuns, "loopback relay fan-out", relayRuns),
		newFigure("group messages accepted, full speed", "msg/s", msgRuns, "", nil),
		newFigure("group delivery latency p99 at half speed", "ms", p99Runs, "", nil),
		newFigure("half-speed delivery rate reached", "msg/s", halfRuns, "", nil),
	)
	s.Figures = append(s.Figures, costFigures("group delivery", "group deliveries", costRuns)...)
	s.Latencies = append(s.Latencies,
		lat.summary(fmt.Sprintf("group end to end (%d members), full speed", size), median(delRuns)),
		halfLat.summary(fmt.Sprintf("group end to end (%d members), half speed", size), median(halfRuns)),
		relayLat.summary("loopback relay fan-out end to end", median(relayRuns)),
	)
	s.Notes = append(s.Notes,
		fmt.Sprintf("%d groups of %d members, one device each; every member sends %d-byte group envelopes (%d bytes of opaque group message) to its group, each delivered to the %d other members, with at most %d messages not yet received by all",
			k, size, envSize, msgLen, size-1, cfg.window),
		fmt.Sprintf("relay frames on the wire: send %d, result %d, deliver %d, ack %d bytes", sizes.send, sizes.result, sizes.deliver, sizes.ack),
	)
	return nil
}

// groupFrameSizes are the wire sizes of the frames of one group message.
func groupFrameSizes(g *benchGroup, msgLen int) wireSizes {
	env := g.envelope(0, 1<<30, make([]byte, msgLen))
	sizes := frameSizes(0)
	enc, _ := wire.Marshal(env)
	id := uint64(1 << 30)
	fe, _ := wire.Marshal(&wire.Frame{Version: wire.ProtocolVersion, Type: wire.FrameSendGroup, RequestID: &id, Body: &enc})
	sizes.send = 2 + 16 + 4 + len(fe)
	now := uint64(time.Now().UnixMilli())
	del, _ := wire.Marshal(&wire.Delivery{Version: 1, QueueID: 1 << 20, MessageID: env.MessageID, Sender: env.Sender,
		Type: 1, Priority: 1, Kind: wire.KindGroup, Ciphertext: env.Message, SentAt: now, AcceptedAt: now,
		ExpiresAt: now + 3600_000, Attempt: 1})
	fd, _ := wire.Marshal(&wire.Frame{Version: wire.ProtocolVersion, Type: wire.FrameDeliver, Body: &del})
	sizes.deliver = 2 + 16 + 4 + len(fd)
	return sizes
}
