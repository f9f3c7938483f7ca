-- Connected accounts (issue 27): a connect page made because the upstream wanted more
-- scope than the person's account there granted (403 insufficient_scope) asks for it.
ALTER TABLE connect_requests ADD COLUMN scope TEXT;
