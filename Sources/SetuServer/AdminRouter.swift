import Hummingbird
import NIOPosix
import SetuGateway
import SetuHits
import SetuPortal

/// The admin listener's routes (DESIGN.md §7): health, readiness, the reconcile status,
/// the alerts that fire, Prometheus metrics, and a way to reconcile now.
enum AdminRouter {
    /// - Parameter token: the admin token; without one, nothing is asked of a client.
    static func make(
        reconciler: ReconcileService, metrics: GatewayMetrics, alerts: AlertEvaluator, dashboard: DashboardSource, token: String? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router()
        // Middleware applies to the routes added after it.
        if let token {
            router.add(middleware: AdminAuthenticator(token: token))
            AdminLogin.add(to: router, token: token)
        }
        router.get("/healthz") { _, _ in
            text("ok\n")
        }
        router.get("/readyz") { _, _ in
            let status = reconciler.status
            guard status.ready else {
                return Response(
                    status: .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: "not ready: no reconcile has succeeded yet\n")))
            }
            return text("ready: serving \(status.revision ?? "")\n")
        }
        router.get("/status") { _, _ in
            json(reconciler.status.json())
        }
        router.post("/reconcile") { _, _ in
            let status = await reconciler.reconcileNow()
            var response = json(status.summaryJSON())
            if status.lastAttempt?.result == "failed" { response.status = .internalServerError }
            return response
        }
        // A reconcile changes what is served, so it is POST only; a GET (a browser, a
        // link-checker) is told so rather than "not found".
        router.get("/reconcile") { _, _ in
            Response(
                status: .methodNotAllowed, headers: [.contentType: "text/plain; charset=utf-8", .allow: "POST"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "reconcile with POST /reconcile\n")))
        }
        router.get("/") { _, _ in
            Response(status: .seeOther, headers: [.location: "/dashboard"])
        }
        router.get("/dashboard") { request, _ in
            let asked = request.uri.queryParameters.get("range") ?? "hour"
            guard let range = Dashboard.Range(rawValue: asked) else {
                return Response(
                    status: .badRequest, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: "range=\(asked) is not a range: use hour, day or week\n")))
            }
            let page = try await dashboard.page(range: range, status: reconciler.status, alerts: alerts)
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
        }
        router.get("/alerts") { _, _ in
            json(AlertJSON.page(alerts))
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        return router
    }

    private static func text(_ body: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    private static func json(_ body: [UInt8]) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// What the dashboard is made from besides the status and the alerts: the hit directory,
/// the last hour in memory, and the gateway's quota use.
struct DashboardSource: Sendable {
    let hitDirectory: String
    let lastHour: LiveSeries
    let gateway: Gateway

    /// The page for `range`; the hit files and rollups are read on NIO's thread pool.
    func page(range: Dashboard.Range, status: ReconcileStatus, alerts: AlertEvaluator) async throws -> String {
        let now = HitLog.nowMilliseconds()
        let directory = hitDirectory, lastHour = lastHour
        let traffic = try await NIOThreadPool.singleton.runIfActive {
            try Dashboard.load(range: range, now: now, hitDirectory: directory, live: lastHour)
        }
        let reconcile = Dashboard.Reconcile(
            ready: status.ready, revision: status.revision, servingSince: status.servingSince, lastResult: status.lastAttempt?.result,
            lastAt: status.lastAttempt?.at, lastDurationMs: status.lastAttempt?.durationMs, lastError: status.lastAttempt?.error,
            conditions: status.conditions.map { ($0.type, $0.status, $0.reason, $0.message) })
        let page = Dashboard(
            range: range, now: now, traffic: traffic,
            quotas: gateway.quotaUsage().map { Dashboard.Quota(consumer: $0.consumer, api: $0.api, period: $0.period, used: $0.used, limit: $0.limit) },
            alerts: alerts.firing, reconcile: reconcile,
            pending: status.pendingApprovals.map { Dashboard.Pending(path: $0.path, commit: $0.commit, by: $0.by, message: $0.message, needs: $0.needs) })
        return page.html()
    }
}
