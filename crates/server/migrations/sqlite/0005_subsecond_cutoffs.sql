-- Sub-second subject cut-offs (issue 11, item 10). `before` stays in whole seconds for
-- verifiers that read only it; `before_ms` is the same cut-off in milliseconds. Opaque
-- tokens keep their issue time in milliseconds too, so both are compared at that
-- precision. Rows written before this migration have NULL and keep the whole-second rule.
ALTER TABLE revocations ADD COLUMN before_ms INTEGER;
ALTER TABLE opaque_tokens ADD COLUMN iat_ms INTEGER;
