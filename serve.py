"""Serve the web page and HTTP API on this machine.

    python serve.py                                   # http://127.0.0.1:8000/
    python serve.py --host 0.0.0.0 --port 8080        # for a team, behind a reverse proxy

Exit code: 1 when the model or catalog cannot be used or the address is taken, 2 for wrong
usage, 130 when stopped by Ctrl-C.
"""
import math
import socket
import sys

#: --max-photo-mb's range: no photo fits under a kB, none is 10 GB (a typo; and the limit in bytes
#: must stay a finite number)
PHOTO_MB = (0.001, 10_000)
#: --body-timeout's range: under a second refuses a client's ordinary pauses; over an hour, a
#: stopping server waits as long for a client gone silent
BODY_TIMEOUT = (1, 3600)


def parse_args(argv=None):
    from features.app.cli import DefaultsHelpFormatter, Parser, given_path
    from features.app.workers import CPUS, check_workers
    from features.model.model_io import MODEL
    from features.products.recommendations import CATALOG

    parser = Parser(description="Serve the img2recommender page (/) and HTTP API "
                                                 "(/api/..., documented at /docs).",
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 for every interface (put a reverse proxy "
                             "with TLS and sign-in in front)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 for any free one")
    parser.add_argument("--workers", type=int, default=CPUS,
                        help="worker processes that read and analyse photos (every request shares them; at most "
                             "4 per CPU)")
    parser.add_argument("--model", type=given_path, default=MODEL,
                        help="model made by train.py (its model_card.json must sit beside it)")
    parser.add_argument("--catalog", type=given_path, default=CATALOG,
                        help="product catalog CSV")
    parser.add_argument("--max-photo-mb", type=float, default=20.0,  # a phone photo is 2-8 MB; a camera's JPEG more
                        help="largest photo accepted, in MB, from {} to {}".format(*PHOTO_MB))
    parser.add_argument("--max-photos", type=int, default=200,  # a drop; the page sends larger ones in several requests
                        help="most photos in one request")
    parser.add_argument("--body-timeout", type=float, default=60.0,  # nginx's client_body_timeout
                        help="seconds a request's body may stop arriving before it is refused (408), "
                             "from {} to {}".format(*BODY_TIMEOUT))
    args = parser.parse_args(argv)
    # checked before anything starts: a wrong number would otherwise be a traceback (NaN: never in range)
    for flag, value, least, most in (("--port", args.port, 0, 65535), ("--max-photo-mb", args.max_photo_mb, *PHOTO_MB),
                                     ("--max-photos", args.max_photos, 1, math.inf),
                                     ("--body-timeout", args.body_timeout, *BODY_TIMEOUT)):
        if not least <= value <= most:
            parser.error(f"{flag} {value}: must be " + (f"at least {least}" if most == math.inf
                                                       else f"from {least} to {most}"))
    try:
        check_workers(args.workers)
    except ValueError as exc:
        parser.error(f"--workers {exc}")
    try:
        args.host.encode("idna")  # as the socket module encodes a non-ASCII one; labels of 1-63 characters
    except UnicodeError:
        parser.error(f"--host {args.host!r}: not a host name or address")
    if not args.host.strip():  # "" binds every interface: an unset variable must not open the server to all
        parser.error("--host is empty: give an address (0.0.0.0 for every interface)")
    return args


def bound_socket(host, port):
    """A socket bound to ``host:port`` (port 0: a free one), for uvicorn to listen on: bound
    before the model is loaded, so a taken port is said at once and the real port is known."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart reuses the port
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def main(argv=None):
    args = parse_args(argv)
    import uvicorn

    from features.model.model_io import ModelError
    from features.products.recommendations import CatalogError
    from features.app.web.app import Settings, create_app
    from features.numbers import MB

    try:
        sock = bound_socket(args.host, args.port)
    except OSError as exc:
        print(f"serve.py: error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})", file=sys.stderr)
        return 1
    settings = Settings(model=args.model, catalog=args.catalog, workers=args.workers,
                        max_photo_bytes=int(args.max_photo_mb * MB), max_photos=args.max_photos,
                        body_timeout=args.body_timeout)
    try:
        app = create_app(settings)
    except (ModelError, CatalogError) as exc:
        print(f"serve.py: error: {exc}", file=sys.stderr)
        return 1
    print(f"serve.py: model {args.model}: {app.state.summary}", file=sys.stderr)
    sock.listen(2048)  # from here a client waits for an answer rather than being refused
    port = sock.getsockname()[1]
    # every interface: this machine's name, which a teammate can open (http://0.0.0.0:8000/ was
    # printed), and its address, for a teammate whose machine does not know the name (a container's)
    every = args.host in ("0.0.0.0", "::")
    address = every and outward_address(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    also = f" or {url(address, port)}" if address else ""
    print(f"serve.py: open {url(socket.gethostname() if every else args.host, port)}{also} (API docs at /docs); "
          f"{args.workers} worker{'' if args.workers == 1 else 's'}", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.handle_exit = stopping_first(server, app.state.analyser)
    server.run(sockets=[sock])
    return 0


def url(host, port):
    """The page's address, an IPv6 address in brackets (``http://::1:8000/`` was printed)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


#: Documentation addresses (RFC 5737, RFC 3849), to find a route to: no packet is sent to them.
PROBES = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}


def outward_address(family):
    """This machine's address of ``family`` on the network its default route leaves by, or
    None where there is none: connecting a UDP socket sends nothing, it only picks the route."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((PROBES[family], 9))
            return probe.getsockname()[0]
    except OSError:  # no route, or no such family here
        return None


def stopping_first(server, analyser):
    """uvicorn's handler of Ctrl-C and SIGTERM, which first answers the photos still queued
    (:meth:`~features.app.web.analyser.Analyser.stop`; uvicorn waits for every open request to end
    before it stops, so a request of 200 queued photos held it as long as they took) and, at a
    second signal, ends the workers too (:meth:`~features.app.web.analyser.Analyser.kill`: they
    ignore the signals, and a photo that hangs would hold the server).  A signal ignored when
    the server started (a background job's SIGINT) stays ignored, as in recommend.py and
    train.py: uvicorn's handler took its place, and the terminal's Ctrl-C stopped the server,
    which exited 0."""
    import asyncio
    import signal

    from features.stops import untouched

    handle_exit = server.handle_exit
    # the rule of stops.py: only Python's own handler is the tool's to replace
    ignored = {number for number in (signal.SIGINT, signal.SIGTERM)
               if signal.getsignal(number) is not untouched(number)}

    def handler(sig, frame):
        if sig in ignored:
            return
        stop = analyser.kill if server.should_exit else analyser.stop
        try:  # soon, on the event loop: the signal may have interrupted code holding the pool's locks
            asyncio.get_running_loop().call_soon_threadsafe(stop)
        except RuntimeError:  # not serving yet: nothing is queued
            pass
        handle_exit(sig, frame)

    return handler


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: uvicorn raises it again once the server has shut down
        sys.exit(130)
