-- Usernames are unique and looked up regardless of case, and stored as typed. The store
-- refuses to open (before this runs) while two users differ only by case.
CREATE UNIQUE INDEX users_username_folded ON users (lower(username));
