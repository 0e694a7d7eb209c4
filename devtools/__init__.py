"""Development tools, outside the runtime path: the X API v2 sandbox, the sample company and
access logs it serves, and the builder of the dbt referrer seed. Imported only by the commands
and tests that use them (`engagement sandbox`, `engagement sample`)."""
