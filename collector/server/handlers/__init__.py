"""One module per conversation the collector has: agents (register, heartbeats, going
missing), jobs (dispatch, progress, models, results and failures), campaigns (uploads and
submissions) and status. Each handler takes (Context, Sender, message) and imports nothing
of the loop; collector.server.table says which handler answers which message."""
