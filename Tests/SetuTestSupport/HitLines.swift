import Foundation
import SetuHits

/// Reads every hit line in a directory, oldest file first, as JSON objects.
public func hitLines(in directory: String) throws -> [[String: Any]] {
    try HitFileName.list(in: directory).flatMap { name -> [[String: Any]] in
        let text = try String(contentsOfFile: directory + "/" + name.fileName, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw FixtureError("a line of \(name.fileName) is not a JSON object: \(line)")
            }
            return object
        }
    }
}
