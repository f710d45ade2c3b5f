import SetuEntitlements
import SetuGateway
import SetuPortal
import Synchronization

/// The gateway's portal: the pages of the snapshot serving, made again when a new revision
/// comes into force, each page rendered once per revision (the catalog's searches each time).
final class PortalService: PortalResponder {
    private let current = Mutex<Portal?>(nil)

    func answer(path: String, query: String, host: String, snapshot: GatewaySnapshot) -> PortalAnswer {
        let portal = current.withLock { current in
            if let portal = current, portal.revision == snapshot.revision { return portal }
            let portal = Portal(marketplace: snapshot.marketplace, revision: snapshot.revision)
            current = portal
            return portal
        }
        let answer = portal.answer(path: path, query: query, host: host)
        return PortalAnswer(status: answer.status, contentType: answer.contentType, body: answer.body)
    }
}
