"""The warehouse: validated batches loaded into the raw DuckDB file (`load`), dbt built over it
incrementally (`build`) and published write-audit-publish into the read-only mart file
(`publish`)."""
