import SetuHits

/// Step 7 of the pipeline: the plan's rate limit (GCRA per consumer and API) and its quota
/// (per UTC day or month). Every answer under a limited plan carries `RateLimit-Policy` and
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10); a refusal is 429 with `Retry-After`.
enum LimitStage {
    static func run(_ exchange: Exchange, nowMicroseconds now: Int64) throws(ProblemDetails) {
        guard let granted = exchange.granted, let plan = granted.plan, let cell = granted.cell else { return }
        let rate = cell.takeRate(plan, nowMicroseconds: now)
        var state = "\"rate\";r=\(rate.remaining);t=\(seconds(rate.wait, per: 1_000_000))"
        var quotaRefusal: LimitCell.QuotaCheck?
        if rate.allowed, let quota = plan.quota, let period = plan.quotaPeriod {
            let check = cell.takeQuota(quota, period: period, nowMilliseconds: now / 1000)
            state += ", \"quota\";r=\(check.remaining);t=\(seconds(check.reset, per: 1000))"
            if !check.allowed { quotaRefusal = check }
        }
        exchange.responseHeaders.append(("RateLimit-Policy", plan.policyHeader))
        exchange.responseHeaders.append(("RateLimit", state))
        let api = granted.entitlement.api
        if !rate.allowed {
            throw .rateLimited(api: api, plan: plan.name, retryAfter: seconds(rate.wait, per: 1_000_000))
        }
        if let quotaRefusal {
            throw .quotaExhausted(api: api, plan: plan, retryAfter: seconds(quotaRefusal.reset, per: 1000))
        }
    }

    /// Whole seconds, rounded up, of a span in `unit`s per second: at least 1 for any wait.
    private static func seconds(_ span: Int64, per unit: Int64) -> Int64 {
        span <= 0 ? 0 : (span + unit - 1) / unit
    }
}
