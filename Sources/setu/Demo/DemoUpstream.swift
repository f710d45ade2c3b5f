import Foundation
import HTTPTypes
import Hummingbird

/// Sample upstreams for the demo: one loopback server answering the example APIs the way
/// API Setu's issuers do. `POST …/<doctype>/certificate` with a JSON body returns the
/// document as XML (a Certificate element, as DigiLocker issuers send it), or a JSON error
/// naming the missing parameter. The path's first segment is the host the example API
/// names (`/api.incometax.example/v3/pancr/certificate`), so one server stands in for all.
enum DemoUpstream {
    /// A document type's name and the parameters its request needs.
    struct DocumentType {
        var name: String
        var parameters: [String]
        var issuer: String
    }

    static let documentTypes: [String: DocumentType] = [
        "pancr": DocumentType(name: "PAN Verification Record", parameters: ["panno", "PANFullName", "DOB"], issuer: "Income Tax Department"),
        "drvlc": DocumentType(name: "Driving Licence", parameters: ["dlno", "DOB"], issuer: "Ministry of Road Transport and Highways"),
        "rvcer": DocumentType(name: "Registration of Vehicles", parameters: ["regno", "chasisno"], issuer: "Ministry of Road Transport and Highways"),
        "vhinsc": DocumentType(name: "Vehicle Insurance", parameters: ["regno"], issuer: "Ministry of Road Transport and Highways"),
        "vhtax": DocumentType(name: "Vehicle Tax Receipt", parameters: ["regno"], issuer: "Ministry of Road Transport and Highways"),
        "hscer": DocumentType(name: "Class XII Marksheet", parameters: ["rollno", "year"], issuer: "Central Board of Secondary Education"),
        "hpcer": DocumentType(name: "Class XII Passing Certificate", parameters: ["rollno", "year"], issuer: "Central Board of Secondary Education"),
        "hsmgr": DocumentType(name: "Migration Certificate", parameters: ["rollno", "year"], issuer: "Central Board of Secondary Education"),
        "sscer": DocumentType(name: "Class X Marksheet", parameters: ["rollno", "year"], issuer: "Central Board of Secondary Education"),
        "spcer": DocumentType(name: "Class X Passing Certificate", parameters: ["rollno", "year"], issuer: "Central Board of Secondary Education"),
    ]

    /// The server, on loopback at `port` (0 picks one); `onListening` gets the port. Under
    /// `/meripehchaan/` it is also the sample consent provider (`DemoConsentProvider`).
    static func application(
        port: Int, consent: DemoConsentProvider,
        onListening: @escaping @Sendable (Int) -> Void
    ) -> some ApplicationProtocol {
        Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                if request.uri.path.hasPrefix(DemoConsentProvider.prefix) {
                    return consent.answer(path: request.uri.path, query: request.uri.queryParameters)
                }
                let body = try await request.body.collect(upTo: 1 << 20)
                return answer(
                    method: request.method.rawValue, path: request.uri.path, body: Data(buffer: body),
                    consumer: request.headers[HTTPField.Name("X-Setu-Consumer")!])
            },
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "demo-issuer"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) }
        )
    }

    static func answer(method: String, path: String, body: Data, consumer: String?) -> Response {
        let segments = path.split(separator: "/")
        guard method == "POST", segments.count >= 2, segments.last == "certificate",
            let type = documentTypes[String(segments[segments.count - 2])]
        else {
            return json(.notFound, ["error": "invalid_request", "errorDescription": "no document type at \(path)"])
        }
        let request = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        let parameters = request["certificateParameters"] as? [String: Any] ?? [:]
        if let missing = type.parameters.first(where: { (parameters[$0] as? String ?? "").isEmpty }) {
            return json(
                .badRequest,
                [
                    "error": "missing_parameter",
                    "errorDescription": "certificateParameters.\(missing) is required for \(type.name)",
                ])
        }
        let number = parameters[type.parameters[0]] as? String ?? ""
        let transaction = request["txnId"] as? String ?? UUID().uuidString.lowercased()
        let issued = ISO8601DateFormatter().string(from: Date())
        let fields = type.parameters.map { "      <Field name=\"\($0)\" value=\"\(escape(parameters[$0] as? String ?? ""))\"/>" }
            .joined(separator: "\n")
        let xml = """
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Certificate language="99" name="\(type.name)" type="\(segments[segments.count - 2].uppercased())" number="\(escape(number))" issuedAt="\(issued)" status="A">
              <IssuedBy><Organization name="\(type.issuer)"/></IssuedBy>
              <IssuedTo requester="\(escape(consumer ?? ""))" txnId="\(escape(transaction))"/>
              <CertificateData>
            \(fields)
              </CertificateData>
            </Certificate>

            """
        return Response(
            status: .ok, headers: [.contentType: "application/xml"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: xml)))
    }

    private static func json(_ status: HTTPResponse.Status, _ object: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
