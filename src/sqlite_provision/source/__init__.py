"""Which tarball, from where, with which checksum: the release catalog, the resolution of a
request into a Source, the download (the only network code) and safe archive extraction."""
