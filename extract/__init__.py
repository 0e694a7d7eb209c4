"""Extraction: the sources (X API v2 posts, mentions and users; support-site access logs) and
the access-log parser. Each source lands one immutable raw batch per data interval through
`engagement.landing`; nothing here touches the warehouse."""
