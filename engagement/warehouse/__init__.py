"""The warehouse: validated batches loaded into the raw DuckDB file (`load`), dbt built over it
incrementally and published write-audit-publish into the read-only mart file (`build`:
`build_and_publish`, `publish`)."""
