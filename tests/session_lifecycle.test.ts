// Session lifecycle, attributes, stats, close ordering and errors, on the in-process memory transport.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  CodecError,
  createMemorySessionPair,
  type EventListener,
  type GettyError,
  type HandlerError,
  LengthFieldCodec,
  MessageTooLongError,
  type Session,
  SessionClosedError,
  setLogger,
} from "../mod.ts";
import { assertNoLeaks, bytes, collectUnhandled, sleep, text, waitFor } from "./helpers/util.ts";

const codec = new LengthFieldCodec();

function echoPair(listenerA: EventListener<Uint8Array> = {}, listenerB?: EventListener<Uint8Array>) {
  return createMemorySessionPair<Uint8Array>({
    a: (s) => {
      s.setPkgHandler(codec);
      s.setEventListener(listenerA);
    },
    b: (s) => {
      s.setPkgHandler(codec);
      s.setEventListener(listenerB ?? { onMessage: (s, pkg) => void s.writePkg(pkg) });
    },
  });
}

describe("session lifecycle", () => {
  after(assertNoLeaks);

  it("delivers packages in order and resolves writePkg with { total, sent }", async () => {
    const got: string[] = [];
    const [a, b] = await echoPair({ onMessage: (_s, p) => void got.push(text(p)) });
    const results = await Promise.all(["one", "two", "three"].map((t) => a.writePkg(bytes(t))));
    assert.deepEqual(results, [{ total: 7, sent: 7 }, { total: 7, sent: 7 }, { total: 9, sent: 9 }]);
    await waitFor(() => got.length === 3);
    assert.deepEqual(got, ["one", "two", "three"]);
    const st = a.stat();
    assert.equal(st.writePkgs, 3);
    assert.equal(st.writeBytes, 23);
    assert.equal(st.readPkgs, 3);
    assert.equal(st.readBytes, 23);
    assert.match(
      String(st),
      /^session \{memory-session:MEMORY:\d+:memory:a<->memory:b\}, Read Bytes: 23, Write Bytes: 23, Read Pkgs: 3, Write Pkgs: 3$/,
    );
    await a.close();
    await b.closed;
    assert.match(a.stat().toString(), /^session-closed /);
  });

  it("close runs onError, then onClose exactly once, then callbacks in order (replace keeps position)", async () => {
    const events: string[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      a: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({
          onError: (_s, e) => events.push(`error:${e.code}`),
          onClose: (_s, info) => events.push(`close:${info.initiator}:${info.error?.code}`),
        });
        s.addCloseCallback("h", 1, () => events.push("cb1"));
        s.addCloseCallback("h", 2, () => events.push("cb2"));
        s.addCloseCallback("h", 3, () => {
          events.push("cb3-throws");
          throw new Error("boom");
        });
        s.addCloseCallback("h", 4, () => events.push("cb4"));
        s.addCloseCallback("h", 1, () => events.push("cb1-replaced"));
        s.addCloseCallback("h", 5, () => events.push("cb5"));
        s.removeCloseCallback("h", 5);
      },
    });
    const warnings: string[] = [];
    setLogger({ debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} });
    try {
      // A frame whose header declares a length above maxMsgLen: a codec-level error closes the session.
      a.setMaxMsgLen(10);
      const closed = a.closed;
      await b.writeBytes(new Uint8Array([0, 0, 1, 0]));
      const info = await closed;
      assert.equal(info.initiator, "error");
      assert.ok(info.error instanceof MessageTooLongError);
      assert.deepEqual(events, [
        "error:ERR_MESSAGE_TOO_LONG",
        "close:error:ERR_MESSAGE_TOO_LONG",
        "cb1-replaced",
        "cb2",
        "cb3-throws",
        "cb4",
      ]);
      assert.deepEqual(warnings, ["close callback threw"]);
      await a.close(); // idempotent
      assert.equal(events.filter((e) => e.startsWith("close")).length, 1);
    } finally {
      setLogger();
      await b.close();
    }
  });

  it("attributes take any key and are dropped at close", async () => {
    const [a, b] = await echoPair();
    const key = { k: 1 };
    a.setAttribute(key, "object key");
    a.setAttribute(42, "number key");
    assert.equal(a.getAttribute(key), "object key");
    assert.equal(a.getAttribute({ k: 1 }), undefined);
    assert.equal(a.getAttribute(42), "number key");
    a.removeAttribute(42);
    assert.equal(a.getAttribute(42), undefined);
    await a.close();
    assert.equal(a.getAttribute(key), undefined);
    await b.closed;
  });

  it("writes after close reject with SessionClosedError and never become unhandled rejections", async () => {
    const [a, b] = await echoPair();
    await a.close();
    await b.closed;
    const unhandled = await collectUnhandled(async () => {
      void a.writePkg(bytes("lost")); // deliberately not awaited
      void a.writeBytes(bytes("lost"));
      await sleep(10);
    });
    assert.deepEqual(unhandled, []);
    await assert.rejects(a.writePkg(bytes("x")), SessionClosedError);
    await assert.rejects(a.writeBytesArray(bytes("x")), (e: GettyError) => e.code === "ERR_SESSION_CLOSED");
  });

  it("a failing writer rejects the write with CodecError and reports it through onError; the session lives", async () => {
    const errors: GettyError[] = [];
    const [a, b] = await createMemorySessionPair<unknown>({
      a: (s) => {
        s.setWriter({
          write: () => {
            throw new Error("cannot encode");
          },
        });
        s.setEventListener({ onError: (_s, e) => void errors.push(e) });
      },
    });
    const unhandled = await collectUnhandled(async () => {
      void a.writePkg({ bad: true });
      await sleep(5);
    });
    assert.deepEqual(unhandled, []);
    await assert.rejects(a.writePkg({}), CodecError);
    assert.equal(errors.length, 2);
    assert.ok(errors.every((e) => e instanceof CodecError));
    assert.equal(a.state, "open");
    await a.close();
    await b.closed;
  });

  it("without a codec, chunks arrive as Uint8Array and strings are sent as UTF-8", async () => {
    const got: Uint8Array[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array | string>({
      b: (s) => s.setEventListener({ onMessage: (_s, p) => void got.push(p as Uint8Array) }),
    });
    await a.writePkg("héllo");
    await waitFor(() => got.length > 0);
    assert.equal(text(got[0]), "héllo");
    await assert.rejects(a.writePkg(42 as unknown as string), CodecError);
    await a.close();
    await b.closed;
  });

  it("a throwing or rejecting onOpen refuses the session, which is then closed", async () => {
    const seen: string[] = [];
    await assert.rejects(
      createMemorySessionPair<Uint8Array>({
        b: (s) =>
          s.setEventListener({
            onOpen: () => Promise.reject(new Error("not welcome")),
            onError: (_s, e) => void seen.push(`${e.code}:${(e as HandlerError).handler}`),
            onClose: (_s, info) => void seen.push(`close:${info.initiator}`),
          }),
      }),
      SessionClosedError,
    );
    assert.deepEqual(seen, ["ERR_HANDLER:onOpen", "close:error"]);
  });

  it("a throwing newSession callback refuses the session", async () => {
    await assert.rejects(
      createMemorySessionPair<Uint8Array>({
        a: () => {
          throw new Error("refuse");
        },
      }),
      SessionClosedError,
    );
  });

  it("a handler that throws or rejects is reported through onError and the session keeps working", async () => {
    const errors: string[] = [];
    const got: string[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      a: (s) => s.setPkgHandler(codec),
      b: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({
          onMessage: (_s, p) => {
            const t = text(p);
            if (t === "throw") throw new Error("sync boom");
            if (t === "reject") return Promise.reject(new Error("async boom"));
            got.push(t);
          },
          onError: (_s, e) => void errors.push(`${e.code}:${(e.cause as Error).message}`),
        });
      },
    });
    for (const t of ["a", "throw", "b", "reject", "c"]) void a.writePkg(bytes(t));
    await waitFor(() => got.length === 3);
    assert.deepEqual(got, ["a", "b", "c"]);
    assert.deepEqual(errors, ["ERR_HANDLER:sync boom", "ERR_HANDLER:async boom"]);
    assert.equal(b.state, "open");
    await a.close();
    await b.closed;
  });

  it("a peer close delivers the packages sent before it, then closes with initiator 'peer'", async () => {
    const got: string[] = [];
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      a: (s) => s.setPkgHandler(codec),
      b: (s) => {
        s.setPkgHandler(codec);
        s.setEventListener({
          onMessage: async (_s, p) => {
            await sleep(5);
            got.push(text(p));
          },
        });
      },
    });
    void a.writePkg(bytes("1"));
    void a.writePkg(bytes("2"));
    await a.close();
    const info = await b.closed;
    assert.equal(info.initiator, "peer");
    assert.deepEqual(got, ["1", "2"]);
  });

  it("a codec error closes only that session; the other side sees the peer close", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({
      b: (s) =>
        s.setReader({
          read: () => {
            throw new CodecError("garbage");
          },
        }),
    });
    await a.writeBytes(bytes("zzz"));
    const info = await b.closed;
    assert.equal(info.error?.code, "ERR_CODEC");
    assert.equal((await a.closed).initiator, "peer");
  });

  it("rejects invalid reader results with CodecError", async () => {
    for (const bad of [{ pkg: 1, length: 0 }, { pkg: 1, length: 99 }, { declared: 2 }]) {
      const [a, b] = await createMemorySessionPair<unknown>({
        b: (s) => s.setReader({ read: () => bad as never }),
      });
      await a.writeBytes(bytes("abcd"));
      const info = await b.closed;
      assert.equal(info.error?.code, "ERR_CODEC", JSON.stringify(bad));
      await a.closed;
    }
  });

  it("getActive moves on complete packages; updateActive sets it now", async () => {
    let session: Session<Uint8Array> | undefined;
    const [a, b] = await echoPair({}, {
      onOpen: (s) => void (session = s),
      onMessage: () => {},
    });
    const before = b.getActive();
    await sleep(15);
    await a.writePkg(bytes("x"));
    await waitFor(() => b.stat().readPkgs === 1);
    assert.ok(b.getActive() >= before + 10, "active time moved with the package");
    await sleep(5);
    b.updateActive();
    assert.ok(b.getActive() >= Date.now() - 2);
    assert.equal(session, b);
    assert.equal(b.endPoint().endPointType, "MEMORY");
    await a.close();
    await b.closed;
  });

  it("setName renames; endpoint-provided defaults apply", async () => {
    const [a, b] = await createMemorySessionPair<Uint8Array>({ session: { maxMsgLen: 1234, waitTime: 50 } });
    assert.equal(a.name, "memory-session");
    a.setName("custom");
    assert.match(a.stat().toString(), /\{custom:MEMORY:/);
    assert.equal(a.maxMsgLen, 1234);
    assert.equal(a.config.waitTime, 50);
    await a.close();
    await b.closed;
  });
});
