-- From this version on, `rows.geom` of a point written as {"type":"Point","coordinates":[...]}
-- holds only the coordinates between the brackets (see `stored_geometry`). Nothing to convert:
-- older rows keep their whole text, which reads back as before. The new version number makes an
-- older Ferry refuse this database instead of reading coordinates as geometry text.
UPDATE meta SET value = value WHERE 0;
