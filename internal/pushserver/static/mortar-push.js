/*
 * mortar-push.js: the browser client of mortar's push gateway (docs/push.md).
 *
 * Plain ES2020, no build step, no dependencies. As a classic script it
 * defines the global MortarPush; under CommonJS it is also module.exports.
 *
 *   const c = new MortarPush({token: () => fetch('/token').then(r => r.text())});
 *   c.on('push', m => console.log(m.channel, m.offset, m.data));
 *   c.connect();
 *   await c.subscribe('news');
 *
 * Events: 'state' ('connecting'|'connected'|'disconnected'|'closed'),
 * 'connect' (the connect result), 'disconnect' ({code, reason, reconnect}),
 * 'push' ({channel?, offset?, data, recovered?}), 'recovery'
 * ({channel, recovered}), 'sub' / 'unsub' (the node's server-side
 * subscription notices), 'error' (an Error; listener exceptions end up here).
 */
(function (root, factory) {
  const MortarPush = factory();
  root.MortarPush = MortarPush;
  if (typeof module === 'object' && module && module.exports) module.exports = MortarPush;
})(typeof globalThis !== 'undefined' ? globalThis : this, function () {
  'use strict';

  // Close codes after which the node does not want the client back
  // (docs/push.md, "Close codes"). Everything else (1001, 1005, 1006,
  // 4002, 4004, 4005, 4006, unknown codes) reconnects.
  const FINAL = new Set([1000, 1002, 1007, 1009, 4000, 4001, 4003, 4007]);

  // pushError makes the Error commands are rejected with: .code is a
  // mortar error code ('invalid_argument', 'unavailable', …).
  function pushError(code, message, extra) {
    const e = new Error(message || code);
    e.code = code;
    return Object.assign(e, extra);
  }

  function defaultURL() {
    if (typeof location === 'undefined') throw new Error('MortarPush: no url and no location');
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/push/ws';
  }

  class MortarPush {
    constructor(opts = {}) {
      if (opts.encoding && opts.encoding !== 'json') throw new Error('MortarPush: only the json encoding is supported');
      this.opts = Object.assign({
        url: null,            // default ws(s)://<location.host>/push/ws
        token: '',            // a string, or a (possibly async) function returning one
        client: '',           // optional client ID; must equal the token's
        encoding: 'json',
        protocols: ['mortar.json'], // WebSocket subprotocols offered at the handshake
        minBackoff: 500,      // ms
        maxBackoff: 20000,    // ms
        timeout: 10000,       // ms to wait for the connect reply
      }, opts);
      this._listeners = {};
      this._subs = new Map();  // channel -> subscription state, see _sub()
      this._pending = new Map(); // command id -> callback(err, result)
      this._queue = [];        // commands issued while not connected
      this._nextID = 1;        // ids are unique for the client's lifetime
      this._ws = null;
      this._live = false;      // between a successful connect reply and the loss
      this._gen = 0;           // connection attempt; stale callbacks compare it
      this._state = 'disconnected';
      this._stopped = true;    // not running: before connect(), after close() or a final close code
      this._attempt = 0;       // reconnects since the last successful connect
      this._authRetried = false; // the one reconnect after 4001 was used
      this._info = null;       // the last connect result
      this._timers = {};
      this._lastSent = 0;
    }

    // ---- events ---------------------------------------------------------

    on(event, fn) {
      (this._listeners[event] || (this._listeners[event] = [])).push(fn);
      return this;
    }

    off(event, fn) {
      const ls = this._listeners[event];
      if (ls) this._listeners[event] = ls.filter(f => f !== fn);
      return this;
    }

    // _emit calls the listeners of event; an exception in one becomes an
    // 'error' event and never reaches the socket callback that emitted.
    _emit(event, arg) {
      const ls = this._listeners[event] || [];
      if (!ls.length && event === 'error' && typeof console !== 'undefined') console.error('MortarPush:', arg);
      for (const fn of ls.slice()) {
        try { fn.call(this, arg); } catch (e) {
          if (event !== 'error') this._emit('error', e);
          else if (typeof console !== 'undefined') console.error('MortarPush: error listener:', e);
        }
      }
    }

    _setState(s) {
      if (this._state === s) return;
      this._state = s;
      this._emit('state', s);
    }

    get state() { return this._state; }
    get info() { return this._info; }

    // ---- public API -----------------------------------------------------

    // connect starts the client; it reconnects on its own until close().
    connect() {
      if (!this._stopped) return this;
      this._stopped = false;
      this._attempt = 0;
      this._authRetried = false;
      this._open();
      return this;
    }

    // close closes the connection for good: no more reconnects. Commands
    // in flight or queued are rejected. connect() starts again.
    close() {
      this._stopped = true;
      this._gen++; // cancels a token fetch in progress
      clearTimeout(this._timers.reconnect);
      if (this._ws) this._lost(1000, 'closed by client', false);
      else this._stop();
    }

    // channels lists the current subscriptions: the ones asked for with
    // subscribe() and the node's server-side ones.
    channels() { return [...this._subs.keys()]; }

    // subscribe subscribes to channel and remembers it: after every
    // reconnect it is subscribed again, with recovery from the last offset
    // seen unless opts.recover is false. opts.offset and opts.epoch resume
    // from a position saved elsewhere. Resolves with the subscribe result
    // ({channel, offset, epoch, recovered, pubs}); rejects on an error
    // reply (the channel is then forgotten) or when the connection is lost
    // first (the channel stays remembered).
    subscribe(channel, opts = {}) {
      return new Promise((resolve, reject) => {
        let s = this._subs.get(channel);
        if (!s) {
          s = this._sub(channel, false);
          if (opts.offset) s.offset = s.seen = opts.offset;
          if (opts.epoch) s.epoch = String(opts.epoch);
        }
        s.recover = opts.recover !== false;
        if (s.result && !s.pendingID && this._live) return resolve(s.result);
        s.waiters.push({resolve, reject});
        if (!s.pendingID && !s.server && this._live) this._sendSubscribe(s);
        // Otherwise it goes out after the next connect reply.
      });
    }

    // unsubscribe forgets channel and tells the node when connected.
    unsubscribe(channel) {
      const s = this._subs.get(channel);
      if (s) {
        this._subs.delete(channel);
        this._settle(s, pushError('failed_precondition', 'unsubscribed from ' + channel));
      }
      if (!this._live) return Promise.resolve({});
      return this._call({op: 'unsubscribe', channel});
    }

    // publish publishes data to channel; resolves with {offset?}. While
    // reconnecting, the command waits for the next connection.
    publish(channel, data) {
      return this._call({op: 'publish', channel, data: data === undefined ? null : data});
    }

    // ---- connection -----------------------------------------------------

    async _open() {
      const gen = ++this._gen;
      this._setState('connecting');
      let token = this.opts.token;
      if (typeof token === 'function') {
        try { token = await token(); } catch (e) {
          if (gen === this._gen) { this._emit('error', e); this._reconnectLater(); }
          return;
        }
      }
      if (gen !== this._gen || this._stopped) return;
      let ws;
      try { ws = new WebSocket(this.opts.url || defaultURL(), this.opts.protocols); } catch (e) {
        this._emit('error', e); // a bad URL: retrying will not help, but stay in the loop like for any failure
        return this._reconnectLater();
      }
      this._ws = ws;
      ws.onopen = () => this._guard(ws, () => {
        const m = {op: 'connect', id: this._nextID++, token: token || ''};
        if (this.opts.client) m.client = this.opts.client;
        this._pending.set(m.id, (err, res) => this._onConnected(err, res));
        this._send(m);
      });
      ws.onmessage = ev => this._guard(ws, () => this._onFrame(ev.data));
      ws.onclose = ev => this._guard(ws, () => this._onClose(ev.code, ev.reason));
      // A close event follows an error in browsers; some WebSocket
      // implementations (Node 20's) fire none after a failed handshake.
      ws.onerror = () => setTimeout(() => this._guard(ws, () => this._lost(1006, 'connection error', true)), 1000);
      // The node closes a silent connection after its connect timeout;
      // this covers a node (or proxy) that never answers at all.
      this._timers.connect = setTimeout(() => this._guard(ws, () => this._lost(4002, 'no connect reply', true)), this.opts.timeout);
    }

    // _guard runs a socket callback only for the current socket and turns
    // anything it throws into an 'error' event.
    _guard(ws, fn) {
      if (ws !== this._ws) return;
      try { fn(); } catch (e) { this._emit('error', e); }
    }

    _send(m) {
      if (!this._ws || this._ws.readyState !== 1) return false;
      this._ws.send(JSON.stringify(m));
      this._lastSent = Date.now();
      return true;
    }

    _onConnected(err, res) {
      if (err) {
        // A refused connect: the node closes with 4001 or 4000 next.
        if (err.closeCode === undefined) this._emit('error', err);
        return;
      }
      clearTimeout(this._timers.connect);
      this._live = true;
      this._attempt = 0;
      this._authRetried = false;
      this._info = res;
      this._setState('connected');
      // Server-side subscriptions: the node makes them at every connect.
      const subs = new Set();
      for (const x of res.subs || []) {
        const r = typeof x === 'string' ? {channel: x} : x;
        subs.add(r.channel);
        const s = this._position(this._subs.get(r.channel) || this._sub(r.channel, true), r);
        s.server = s.done = true;
        s.result = r;
      }
      for (const s of [...this._subs.values()]) {
        if (s.server && !subs.has(s.channel)) {
          // A server-side subscription of the previous connection that
          // this one does not have: gone.
          this._subs.delete(s.channel);
          this._settle(s, pushError('failed_precondition', 'not subscribed by the node'));
          this._emit('unsub', {channel: s.channel});
        } else if (s.server) this._settle(s, null, s.result);
        else this._sendSubscribe(s);
      }
      const q = this._queue;
      this._queue = [];
      for (const c of q) this._command(c.m, c.cb);
      this._emit('connect', res);
      this._heartbeat(res.ping, res.pong);
    }

    _onClose(code, reason) {
      // No disconnect message came first: decide by the close code.
      this._lost(code, reason || '', !FINAL.has(code));
    }

    // _lost ends the current connection (closing the socket if it is still
    // open), fails what was in flight and decides whether to reconnect.
    _lost(code, reason, reconnect) {
      const ws = this._ws;
      this._ws = null;
      this._live = false;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try { if (ws.readyState < 2) ws.close(1000); } catch (e) { /* already closing */ }
      }
      for (const k of ['connect', 'ping', 'pong']) { clearTimeout(this._timers[k]); this._timers[k] = 0; }
      const err = pushError('unavailable', 'disconnected: ' + code + (reason ? ' ' + reason : ''), {closeCode: code});
      const pending = [...this._pending.values()];
      this._pending.clear();
      for (const cb of pending) cb(err);
      for (const s of this._subs.values()) {
        s.pendingID = 0;
        s.buffer = [];
        this._settle(s, err);
      }
      // 4001 is final, but a token function may fetch a fresh token for an
      // expired one: try once more, until a connect succeeds again.
      if (!reconnect && code === 4001 && !this._stopped && typeof this.opts.token === 'function' && !this._authRetried) {
        this._authRetried = true;
        reconnect = true;
      }
      if (this._stopped) reconnect = false;
      this._emit('disconnect', {code, reason, reconnect});
      if (code === 4005) this._attempt = Math.max(this._attempt, 4); // flood: back off longer
      if (reconnect && !this._stopped) this._reconnectLater();
      else this._stop();
    }

    // _stop settles everything when the client will not reconnect.
    _stop() {
      this._stopped = true;
      const err = pushError('unavailable', 'client closed');
      const q = this._queue;
      this._queue = [];
      for (const c of q) c.cb(err);
      for (const s of this._subs.values()) this._settle(s, err);
      this._setState('closed');
    }

    // _reconnectLater waits a full-jitter exponential backoff: a random
    // time between 0 and min(maxBackoff, minBackoff·2^attempt).
    _reconnectLater() {
      this._setState('disconnected');
      const cap = Math.min(this.opts.maxBackoff, this.opts.minBackoff * 2 ** this._attempt);
      this._attempt = Math.min(this._attempt + 1, 30);
      clearTimeout(this._timers.reconnect);
      this._timers.reconnect = setTimeout(() => { if (!this._stopped) this._open(); }, Math.random() * cap);
    }

    // ---- heartbeats -----------------------------------------------------

    // _heartbeat pings after ping seconds of our own silence; when nothing
    // at all arrives within pong seconds of a ping the connection is dead.
    _heartbeat(ping, pong) {
      if (!(ping > 0)) return;
      const ws = this._ws, pingMs = ping * 1000, pongMs = (pong > 0 ? pong : ping) * 1000;
      const tick = () => this._guard(ws, () => {
        const wait = this._lastSent + pingMs - Date.now();
        if (wait <= 0) {
          this._send({op: 'ping'});
          if (!this._timers.pong) {
            this._timers.pong = setTimeout(() => this._guard(ws, () => this._lost(4006, 'no pong from the node', true)), pongMs);
          }
        }
        this._timers.ping = setTimeout(tick, Math.max(wait > 0 ? wait : pingMs, 1));
      });
      this._timers.ping = setTimeout(tick, Math.max(this._lastSent + pingMs - Date.now(), 1));
    }

    // ---- incoming -------------------------------------------------------

    _onFrame(raw) {
      // Anything heard proves the connection alive.
      clearTimeout(this._timers.pong);
      this._timers.pong = 0;
      if (typeof raw !== 'string') return this._emit('error', new Error('MortarPush: binary frame on a JSON connection'));
      let m;
      try { m = JSON.parse(raw); } catch (e) { return this._emit('error', new Error('MortarPush: bad JSON from the node: ' + e.message)); }
      if (!m || typeof m !== 'object') return;
      switch (m.op) {
        case 'reply': {
          const cb = this._pending.get(m.id);
          if (cb) {
            this._pending.delete(m.id);
            cb(m.error ? pushError(m.error.code || 'internal', m.error.message) : null, m.result || {});
          }
          return;
        }
        case 'push': return this._onPush(m);
        case 'ping': this._send({op: 'pong'}); return;
        case 'pong': return;
        case 'sub': {
          const s = this._subs.get(m.channel) || this._sub(m.channel, true);
          this._position(s, m);
          s.result = {channel: m.channel, offset: s.offset, epoch: s.epoch};
          this._settle(s, null, s.result);
          return this._emit('sub', {channel: m.channel, offset: m.offset, epoch: m.epoch});
        }
        case 'unsub': {
          const s = this._subs.get(m.channel);
          if (s) { this._subs.delete(m.channel); this._settle(s, pushError('failed_precondition', 'unsubscribed by the node')); }
          return this._emit('unsub', {channel: m.channel, offset: m.offset, epoch: m.epoch});
        }
        case 'disconnect':
          // Honour the node's word; its close frame that follows is ignored.
          return this._lost(m.code || 1000, m.reason || '', !!m.reconnect);
        default: // unknown ops are ignored, like unknown fields
      }
    }

    _onPush(m) {
      const s = m.channel !== undefined ? this._subs.get(m.channel) : null;
      if (s && s.pendingID) s.buffer.push(m); // held until the subscribe reply's pubs
      else this._deliver(s, m, false);
    }

    // _deliver emits one push, dropping duplicates (an offset not above
    // the last one delivered on the channel), and acknowledges it after
    // the listeners ran when it asks for an ack.
    _deliver(s, m, recovered) {
      let dup = false;
      if (s && typeof m.offset === 'number' && m.offset > 0) {
        dup = m.offset <= s.seen;
        if (!dup) { s.seen = m.offset; s.offset = Math.max(s.offset, m.offset); }
      }
      if (!dup) {
        const ev = {data: m.data === undefined ? null : m.data};
        if (m.channel !== undefined) ev.channel = m.channel;
        if (m.offset !== undefined) ev.offset = m.offset;
        if (recovered) ev.recovered = true;
        this._emit('push', ev);
      }
      if (m.ack) this._send({op: 'ack', ack: m.ack});
    }

    // ---- commands and subscriptions ---------------------------------------

    // _call sends a command with an id and resolves with its result.
    _call(m) {
      return new Promise((resolve, reject) => {
        const cb = (err, res) => (err ? reject(err) : resolve(res));
        if (this._live) this._command(m, cb);
        else if (this._state === 'closed') reject(pushError('unavailable', 'client closed'));
        else this._queue.push({m, cb});
      });
    }

    _command(m, cb) {
      m.id = this._nextID++;
      this._pending.set(m.id, cb);
      this._send(m); // if the socket is already closing, _lost rejects it
      return m.id;
    }

    // _sub makes the state of one subscription. offset and epoch are the
    // position to recover from; seen is the last offset delivered (for
    // dropping duplicates); server marks the node's own subscriptions,
    // which the node remakes at connect and the client never resubscribes.
    _sub(channel, server) {
      const s = {channel, server, recover: true, offset: 0, epoch: '', seen: 0, done: false,
        result: null, pendingID: 0, buffer: [], waiters: []};
      this._subs.set(channel, s);
      return s;
    }

    // _position takes offset and epoch from a subscribe result or sub
    // notice. A new epoch means a new history: offsets start over.
    _position(s, r) {
      const epoch = r.epoch ? String(r.epoch) : '';
      if (epoch !== s.epoch) { s.epoch = epoch; s.offset = 0; s.seen = 0; }
      if (typeof r.offset === 'number' && r.offset > s.offset) s.offset = r.offset;
      return s;
    }

    _settle(s, err, res) {
      const w = s.waiters;
      s.waiters = [];
      for (const x of w) (err ? x.reject(err) : x.resolve(res));
    }

    // _sendSubscribe (re)subscribes s. After the first success, and when a
    // saved position was given, it asks for recovery from offset/epoch.
    _sendSubscribe(s) {
      const m = {op: 'subscribe', channel: s.channel};
      const recover = s.recover && (s.done || s.offset > 0 || s.epoch !== '');
      if (recover) {
        m.recover = true;
        if (s.offset) m.offset = s.offset;
        if (s.epoch) m.epoch = s.epoch;
      }
      s.pendingID = this._command(m, (err, res) => {
        if (this._subs.get(s.channel) !== s) return; // unsubscribed meanwhile
        if (err && err.closeCode !== undefined) return; // connection lost: _lost handles s
        s.pendingID = 0;
        if (err) {
          this._subs.delete(s.channel);
          s.buffer = [];
          err.channel = s.channel;
          if (s.waiters.length) this._settle(s, err);
          else this._emit('error', err);
          return;
        }
        this._position(s, res);
        s.done = true;
        s.result = res;
        for (const p of res.pubs || []) this._deliver(s, {channel: s.channel, offset: p.offset, data: p.data}, true);
        if (recover) this._emit('recovery', {channel: s.channel, recovered: !!res.recovered});
        const held = s.buffer;
        s.buffer = [];
        for (const p of held) this._deliver(s, p, false);
        this._settle(s, null, res);
      });
    }
  }

  MortarPush.FINAL_CLOSE_CODES = FINAL;
  return MortarPush;
});
