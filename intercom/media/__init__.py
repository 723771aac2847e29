"""Sans-IO media: SDP, RTP/RTCP, codecs, jitter buffer, DTMF."""
