//! The script texts of the catalogue, byte for byte as the clients send them (data
//! only: each one's SHA1 is what Redis computes from these exact bytes).

/// SHA1 `68c369c9caadc07bd3c92dfbf3f41b7c6d2b035d`.
pub const DIST_LOCK_CREATE: &str = concat!(
    "-- Atomically set a hash and set its TTL iff a hash with the same key doesn't already exist\n",
    "-- TODO: Try to get an existing lock so we can return it if one exists\n",
    "if redis.call(\"EXISTS\", KEYS[1]) == 0 then\n",
    "  redis.call(\"HMSET\", KEYS[1], \"id\", ARGV[1], \"owner\", ARGV[2])\n",
    "  redis.call(\"PEXPIRE\", KEYS[1], ARGV[3])\n",
    "  return 1\n",
    "end\n",
    "return 0\n",
);

/// SHA1 `d21abcd8dbaac30fe46fd7c5d03779ac14e09182`.
pub const DIST_LOCK_DELETE: &str = concat!(
    "-- Atomically delete a lock iff its ID matches the one provided\n",
    "if redis.call(\"HGET\", KEYS[1], \"id\") == ARGV[1] then\n",
    "  return redis.call(\"DEL\", KEYS[1])\n",
    "end\n",
    "return 0",
);

/// SHA1 `7d26418ef39fdae69592a6b43f82fea7b05db06e`.
pub const DIST_LOCK_EXTEND: &str = concat!(
    "-- Atomically change the TTL of a lock iff its ID matches the one provided\n",
    "if redis.call(\"HGET\", KEYS[1], \"id\") == ARGV[1] then\n",
    "  return redis.call(\"PEXPIRE\", KEYS[1], ARGV[2])\n",
    "end\n",
    "return 0\n",
);

/// SHA1 `c3f8721cbb97f72bc19e972846bd7aaf91901658`.
pub const REDIS_PY_RELEASE: &str = concat!(
    "\n",
    "        local token = redis.call('get', KEYS[1])\n",
    "        if not token or token ~= ARGV[1] then\n",
    "            return 0\n",
    "        end\n",
    "        redis.call('del', KEYS[1])\n",
    "        return 1\n",
    "    ",
);

/// SHA1 `a4e8783852e6b949f9ef3a97212805108459a890`.
pub const REDIS_PY_EXTEND: &str = concat!(
    "\n",
    "        local token = redis.call('get', KEYS[1])\n",
    "        if not token or token ~= ARGV[1] then\n",
    "            return 0\n",
    "        end\n",
    "        local expiration = redis.call('pttl', KEYS[1])\n",
    "        if not expiration then\n",
    "            expiration = 0\n",
    "        end\n",
    "        if expiration < 0 then\n",
    "            return 0\n",
    "        end\n",
    "\n",
    "        local newttl = ARGV[2]\n",
    "        if ARGV[3] == \"0\" then\n",
    "            newttl = ARGV[2] + expiration\n",
    "        end\n",
    "        redis.call('pexpire', KEYS[1], newttl)\n",
    "        return 1\n",
    "    ",
);

/// SHA1 `1cac51482acf5858da00f6d685d68f886cd6b6b2`.
pub const REDIS_PY_REACQUIRE: &str = concat!(
    "\n",
    "        local token = redis.call('get', KEYS[1])\n",
    "        if not token or token ~= ARGV[1] then\n",
    "            return 0\n",
    "        end\n",
    "        redis.call('pexpire', KEYS[1], ARGV[2])\n",
    "        return 1\n",
    "    ",
);

/// SHA1 `d01fb69e6ecc8bad3ca9bacba9f4f9e96862313f`.
pub const REDLOCK_4_0_LOCK: &str = concat!(
    "\n",
    "\t-- Return 0 if an entry already exists.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t\tif redis.call(\"exists\", key) == 1 then\n",
    "\t\t\treturn 0\n",
    "\t\tend\n",
    "\tend\n",
    "\n",
    "\t-- Create an entry for each provided key.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t\tredis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n",
    "\tend\n",
    "\n",
    "\t-- Return the number of entries added.\n",
    "\treturn table.getn(KEYS)\n",
);

/// SHA1 `e5a322e2634ef59a516e8ea150cb085afafee684`.
pub const REDLOCK_4_1_LOCK: &str = concat!(
    "\n",
    "\t-- Return 0 if an entry already exists.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t\tif redis.call(\"exists\", key) == 1 then\n",
    "\t\t\treturn 0\n",
    "\t\tend\n",
    "\tend\n",
    "\n",
    "\t-- Create an entry for each provided key.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t\tredis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n",
    "\tend\n",
    "\n",
    "\t-- Return the number of entries added.\n",
    "\treturn #KEYS\n",
);

/// SHA1 `517e7ed95f00c0c4a209c6a7afcc6ab797d30b85`.
pub const REDLOCK_4_0_UNLOCK: &str = concat!(
    "\n",
    "\tlocal count = 0\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t  -- Only remove entries for *this* lock value.\n",
    "\t  if redis.call(\"get\", key) == ARGV[1] then\n",
    "\t    redis.pcall(\"del\", key)\n",
    "\t    count = count + 1\n",
    "\t  end\n",
    "\tend\n",
    "\n",
    "\t-- Return the number of entries removed.\n",
    "\treturn count\n",
);

/// SHA1 `0f0f23b9048b36752b5be114f357ba083449f908`.
pub const REDLOCK_4_2_UNLOCK: &str = concat!(
    "\n",
    "\tlocal count = 0\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t\t-- Only remove entries for *this* lock value.\n",
    "\t\tif redis.call(\"get\", key) == ARGV[1] then\n",
    "\t\t\tredis.pcall(\"del\", key)\n",
    "\t\t\tcount = count + 1\n",
    "\t\tend\n",
    "\tend\n",
    "\n",
    "\t-- Return the number of entries removed.\n",
    "\treturn count\n",
);

/// SHA1 `acaf90b4697bb48bb5f603e9e613a54df7536c70`.
pub const REDLOCK_4_0_EXTEND: &str = concat!(
    "\n",
    "\t-- Return 0 if an entry exists with a *different* lock value.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t  if redis.call(\"get\", key) ~= ARGV[1] then\n",
    "\t    return 0\n",
    "\t  end\n",
    "\tend\n",
    "\n",
    "\t-- Update the entry for each provided key.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t  redis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n",
    "\tend\n",
    "\n",
    "\t-- Return the number of entries updated.\n",
    "\treturn table.getn(KEYS)\n",
);

/// SHA1 `1d48b4c6fea2cdadc46b3346de5c2eaf121c7bb3`.
pub const REDLOCK_4_1_EXTEND: &str = concat!(
    "\n",
    "\t-- Return 0 if an entry exists with a *different* lock value.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t  if redis.call(\"get\", key) ~= ARGV[1] then\n",
    "\t    return 0\n",
    "\t  end\n",
    "\tend\n",
    "\n",
    "\t-- Update the entry for each provided key.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t  redis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n",
    "\tend\n",
    "\n",
    "\t-- Return the number of entries updated.\n",
    "\treturn #KEYS\n",
);

/// SHA1 `ce46f80993d5dac20dd066eb301a4e37994bdbed`.
pub const REDLOCK_4_2_EXTEND: &str = concat!(
    "\n",
    "\t-- Return 0 if an entry exists with a *different* lock value.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t\tif redis.call(\"get\", key) ~= ARGV[1] then\n",
    "\t\t\treturn 0\n",
    "\t\tend\n",
    "\tend\n",
    "\n",
    "\t-- Update the entry for each provided key.\n",
    "\tfor i, key in ipairs(KEYS) do\n",
    "\t\tredis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n",
    "\tend\n",
    "\n",
    "\t-- Return the number of entries updated.\n",
    "\treturn #KEYS\n",
);

/// SHA1 `647c65a442733a1aa440f99908d249d13b4d6c4a`.
pub const COMPARE_AND_DELETE: &str = concat!(
    "if redis.call(\"get\",KEYS[1]) == ARGV[1] then\n",
    "    return redis.call(\"del\",KEYS[1])\n",
    "else\n",
    "    return 0\n",
    "end",
);

/// SHA1 `1bfbb99810d66d9ea59b16336fdf07c12b8be9fc`.
pub const COMPARE_AND_PEXPIRE: &str = concat!(
    "if redis.call(\"get\",KEYS[1]) == ARGV[1] then\n",
    "    return redis.call(\"pexpire\",KEYS[1],ARGV[2])\n",
    "else\n",
    "    return 0\n",
    "end",
);
