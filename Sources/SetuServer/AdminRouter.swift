import Hummingbird
import SetuGateway
import SetuHits

/// The admin listener's routes (DESIGN.md §7): health, readiness, the reconcile status,
/// the alerts that fire, Prometheus metrics, and a way to reconcile now.
enum AdminRouter {
    /// - Parameter token: the admin token; without one, nothing is asked of a client.
    static func make(
        reconciler: ReconcileService, metrics: GatewayMetrics, alerts: AlertEvaluator, token: String? = nil
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
