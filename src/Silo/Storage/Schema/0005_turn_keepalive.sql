-- Issue 5: a streamed turn whose reply runs longer than the model timeout plus a minute tells the
-- store it is still alive, so the reaper of abandoned turns (pending and silent for that long) does
-- not refund it under the stream. Null until the first sign of life after admission.
ALTER TABLE turns ADD COLUMN alive_at BIGINT;
