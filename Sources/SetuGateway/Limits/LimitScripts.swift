import Crypto

/// The Lua scripts that keep plans in Redis. Each runs atomically on the server, so
/// replicas asking at once cannot both take the last request of a limit (the race of a
/// read, a local computation and a write that a script avoids).
enum LimitScript: Int, CaseIterable {
    /// One request of an *exact* plan: the rate limit (GCRA) and then the quota.
    case check
    /// What a replica admitted of a plan since its last sync (*batched* plans, and *exact*
    /// ones while the store was unreachable).
    case sync

    /// The script's text.
    var source: String {
        switch self {
        case .check: Self.checkSource
        case .sync: Self.syncSource
        }
    }

    /// The SHA-1 of the text, which `EVALSHA` names it by.
    var sha: String { Self.shas[rawValue] }

    private static let shas: [String] = allCases.map { script in
        Insecure.SHA1.hash(data: Array(script.source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// KEYS[1]: the theoretical arrival time (TAT) in microseconds of Redis's clock.
    /// KEYS[2], when the plan has a quota: the count of the current quota period.
    /// ARGV: microseconds between requests, the burst, the quota, and the quota period's
    /// end in seconds since 1970.
    /// Returns {allowed, requests left in the burst, microseconds to wait, quota used
    /// (-1 without a quota), quota allowed, the TAT}: the rate is taken even when the quota
    /// then refuses, as the in-process store does.
    private static let checkSource = """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local interval = tonumber(ARGV[1])
        local capacity = tonumber(ARGV[2]) * interval
        local arrival = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now) + interval
        if arrival - now > capacity then
          return {0, 0, arrival - capacity - now, -1, 0, arrival - interval}
        end
        redis.call('SET', KEYS[1], string.format('%d', arrival), 'PX', math.floor((arrival - now) / 1000) + 1)
        local used = -1
        local allowed = 1
        if #KEYS > 1 then
          used = tonumber(redis.call('GET', KEYS[2]) or '0')
          if used < tonumber(ARGV[3]) then
            used = redis.call('INCR', KEYS[2])
            if used == 1 then redis.call('EXPIREAT', KEYS[2], ARGV[4]) end
          else
            allowed = 0
          end
        end
        return {1, math.floor((capacity - (arrival - now)) / interval), arrival - now, used, allowed, arrival}
        """

    /// KEYS as for `check`. ARGV: microseconds between requests, the requests the replica
    /// admitted since its last sync, when the first of them came (microseconds, the
    /// replica's clock), the quota requests it admitted since then, and the quota period's
    /// end in seconds since 1970.
    /// Returns {the TAT with them, the quota used with them (-1 without a quota)}.
    private static let syncSource = """
        local interval = tonumber(ARGV[1])
        local since = tonumber(ARGV[3])
        local arrival = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), since) + tonumber(ARGV[2]) * interval
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        redis.call('SET', KEYS[1], string.format('%d', arrival), 'PX', math.max(1, math.floor((arrival - now) / 1000) + 1))
        local used = -1
        if #KEYS > 1 then
          used = redis.call('INCRBY', KEYS[2], ARGV[4])
          redis.call('EXPIREAT', KEYS[2], ARGV[5])
        end
        return {arrival, used}
        """
}
