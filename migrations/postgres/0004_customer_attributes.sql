-- A company's own customer attributes, per profile version: a JSON object of name → value
-- (numbers, strings for categories, booleans for flags), in name order. Profiles stored
-- before attributes existed have none.
ALTER TABLE customers ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
