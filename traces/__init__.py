"""What traced apps send: experiments, traces and spans, their ingest, search and list."""
