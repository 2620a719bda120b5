"""The GUI here, the worker on another machine: the link between them. Torch-free, like the rest of
the contract; nothing that can carry code (pickle, marshal, eval, exec) touches received data.

    codec.py         typed, versioned messages: registered dataclasses <-> MessagePack, checked on the way in
    messages.py      what travels (the contract's envelopes and results, the browser's and the link's
                     own messages; the registry: one line per class, with limits) and which way
    link.py          framing on a byte stream, size limits, timeouts
    frames.py        frame compression: zstd (lossless, default), JPEG, raw
    server.py        `serve`: one GUI at a time, token, optional TLS; hosts a Handler
    client.py        the GUI's end: RemoteClient, latest-args-wins, reconnection, link statistics
    backend.py       RemoteClient as a backend of renderer.client.RenderClient (W files as bytes, no paths)
    walk.py          every RenderArgs inside a request, changed by one function
    tokens.py        VIZ_TOKEN, token files, constant-time comparison
    tls.py           a self-signed certificate kept across restarts; the client pins its fingerprint
    served_files.py  models under the server's root, and nothing else; the same listing of a local folder
    wfile.py         W files that travel as their .npy / .npz bytes (the server parses them without pickle)
    options.py       the command-line options of `serve` and `--connect`, and what they build
    echo.py          a stand-in worker (tests, benchmark, checking a tunnel)

The worker behind `python visualizer.py serve` is renderer/worker/serve.py's WorkerHandler: one
renderer.worker.worker.Worker whose requests take the same turns as a local GUI's (Schedule).

The handler. `Server(handler, root=..., port=..., token=...)` hosts one object with four methods,
all called on the server's single work thread (so the handler needs no locks of its own):

    open(send)        a GUI connected (after its token was checked). `send(reply)` queues a reply to
                      it; it is thread-safe and never blocks, so a handler may also call it from
                      threads of its own (e.g. one that pumps a worker process's result queue).
    handle(message)   a request arrived: FrameRequest, JobRequest, CancelJob or StatusRequest
                      (renderer/protocol.py). Keep it quick: note the request and return; do the
                      work in poll().
    poll() -> bool    do one slice of work (a frame, or a slice of a job) and return whether more
                      is waiting. While it returns False the server calls it every IDLE_POLL_S, and
                      at once when a request arrives. While more than BACKLOG_BYTES of replies wait
                      for a slow link, it is not called.
    close()           the GUI left (or its link died): cancel its jobs and forget its requests.

What the handler may rely on, and must do:
- Every FrameRequest is answered with exactly one FrameReply(result) (renderer/frame_slots.py) whose
  result has that stamp (an error result included); the server encodes result.image for the link,
  with the codec the GUI chose. The GUI sends at most one FrameRequest at a time, so latest-wins
  needs nothing here.
- Every JobRequest ends with one JobDone(job_id, value | error | cancelled), JobProgress(job_id,
  done, total, output) between. Progress reports without an output that are not yet written are
  replaced by newer ones, so a handler may report often; a ClipFrame output always travels, losslessly.
- A StatusRequest is answered with a WorkerStatus.
- Every RenderArgs in a request has its `model` resolved to an absolute path under the server's
  root (renderer/remote/served_files.py) before handle() sees it; a request naming a path outside
  the root, or a W file path, is answered by the server and never reaches the handler (W files
  come as RenderArgs.w_npy, the file's bytes).
- ListDirectory (the model browser) and the link's own messages are the server's business.
- A handler that raises is logged; a FrameRequest or JobRequest it raised on gets an error reply.
  A reply that cannot be encoded (over a limit) is replaced by an error reply.

On the GUI side, `RemoteClient(address, token, fingerprint=None)` offers set_frame(stamp, args),
send(request) -> bool, receive(timeout) -> list of replies, status (connected / reconnecting /
refused, with a message and the server's name), stats (round-trip time, bandwidth, the last
frame's codec, sizes, encode and decode times) and the frame codec (switchable); the GUI uses it
through RenderClient(remote=RemoteClient(...)).
"""
