#!/usr/bin/python3
"""A real XEP-0198 (stream management) client for presenced's integration tests.

slixmpp (Debian's python3-slixmpp) logs in as JID, enables stream management
with resumption, answers XEP-0199 pings and disco#info, and sends available
presence with STATUS. It prints "ready <full JID> sm=<enabled> resume=<id>"
on stdout once the server has enabled stream management, then runs until
killed. Killed with SIGKILL, its TCP connection is cut without a goodbye: a
server that offers resumption then keeps the session (MongooseIM:
resume_timeout), which is what the test wants.

SIGUSR1 cuts the TCP connection the same way but keeps the process and its
stream-management state (it answers nothing meanwhile); SIGUSR2 then
connects again and resumes the session (XEP-0198 resume), printing
"resumed <full JID>". A resumed session sends no new presence: the server
keeps the session's.

Usage: smclient.py JID PASSWORD HOST PORT STATUS
"""
import asyncio
import logging
import signal
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, status):
        super().__init__(jid, password)
        self.status = status
        self.register_plugin("xep_0030")  # disco#info
        self.register_plugin("xep_0199")  # answers pings
        self.register_plugin("xep_0198")  # stream management
        self["xep_0198"].allow_resume = True
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("sm_enabled", self.enabled)
        self.add_event_handler("session_resumed", self.resumed)
        self.add_event_handler("failed_auth", lambda _: self.fail("authentication failed"))
        self.add_event_handler("connection_failed", lambda e: self.fail("connection failed: %s" % e))

    def fail(self, why):
        print("error " + why, flush=True)
        sys.exit(1)

    async def start(self, _):
        self.send_presence(pstatus=self.status)
        await self.get_roster()

    def enabled(self, _):
        sm = self["xep_0198"]
        print("ready %s sm=%s resume=%s" % (self.boundjid.full, sm.enabled_in, sm.sm_id), flush=True)


    def resumed(self, _):
        print("resumed %s" % self.boundjid.full, flush=True)

    def cut(self):
        # The socket closes without a stream close; stream management's
        # state (the session id, counters) stays for the resumption.
        self.abort()

    def resume(self):
        self.connect(self.c2s_address)


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    jid, password, host, port, status = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    c = Client(jid, password, status)
    # The test servers have self-signed certificates.
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = __import__("ssl").CERT_NONE
    c.c2s_address = (host, int(port))
    c.connect(c.c2s_address)
    loop = asyncio.get_event_loop()
    loop.add_signal_handler(signal.SIGUSR1, c.cut)
    loop.add_signal_handler(signal.SIGUSR2, c.resume)
    loop.run_forever()


if __name__ == "__main__":
    main()
