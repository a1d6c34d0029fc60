/**
 * Frame batching under effect/rpc: the frames a socket is given while the runtime runs one batch
 * of fibers are written together (one corked `writeAll`, one system call) at the end of that
 * batch, instead of one write per frame. Under load a connection carries tens of requests or
 * answers per write; alone, a frame waits only for the end of the current batch (a microtask).
 * Each `write` still completes when its frame was handed to the socket, with its error if any.
 */
import { Deferred, Effect } from "effect"
import * as Socket from "effect/socket/Socket"

type Frame = Uint8Array | string

const coalesce = (inner: Socket.Writer): Socket.Writer => {
  let pending: Array<Frame> = []
  let written: Deferred.Deferred<void, Socket.SocketError> | undefined
  const flush = () => {
    const frames = pending
    const done = written!
    pending = []
    written = undefined
    Effect.runFork(
      Effect.exit(inner.writeAll(frames as [Frame, ...Array<Frame>])).pipe(
        Effect.flatMap((exit) => Deferred.done(done, exit))
      )
    )
  }
  return {
    write: (chunk) => {
      if (Socket.isCloseEvent(chunk)) {
        // Everything before the close goes first.
        return Effect.suspend(() =>
          written === undefined
            ? inner.write(chunk)
            : Effect.andThen(Deferred.await(written), inner.write(chunk))
        )
      }
      return Effect.suspend(() => {
        pending.push(chunk)
        if (written === undefined) {
          written = Deferred.makeUnsafe()
          queueMicrotask(flush)
        }
        return Deferred.await(written)
      })
    },
    writeAll: (chunks) =>
      Effect.suspend(() => {
        pending.push(...chunks)
        if (written === undefined) {
          written = Deferred.makeUnsafe()
          queueMicrotask(flush)
        }
        return Deferred.await(written)
      })
  }
}

/** `socket` with its writes coalesced (see the module comment). */
export const make = (socket: Socket.Socket): Socket.Socket =>
  Socket.make({ reader: socket.reader, writer: Effect.map(socket.writer, coalesce) })
