import Foundation
import GatehouseDoctor
import Testing

/// The evidence added for systems the doctor never saw: the request host, word-level wording,
/// shared error formats, refinements of a broad cause, whether credentials were sent.
@Suite("doctor evidence")
struct DoctorEvidenceTests {
    let doctor = ResponseDoctor(knowledge: Fixtures.knowledge)

    func diagnose(_ raw: String, url: String? = nil, credentials: Bool? = nil) throws -> Diagnosis {
        try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x", url: url, credentialsSent: credentials).results.first?.1)
    }

    @Test("a system's error shapes name it, not one sentence: Okta's codes, Akamai's problem types, Harbor's refusal")
    func errorShapes() throws {
        let okta = try diagnose("HTTP/1.1 429 Too Many Requests\r\n\r\ne0000047 => api call exceeded rate limit due to too many requests.")
        #expect(okta.deniedBy == "okta")
        #expect(okta.cause == .rateLimited)
        let oktaObject = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n"
                + #"{"errorCode":"invalid_client","errorSummary":"Invalid value for 'client_id' parameter.","errorLink":"invalid_client","errorId":"oae1","errorCauses":[]}"#
        )
        #expect(oktaObject.deniedBy == "okta")
        let akamai = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/problem+json\r\n\r\n"
                + #"{"status":403,"title":"Forbidden.","type":"/mtls-edge-truststore/error-types/forbidden"}"#
        )
        #expect(akamai.deniedBy == "akamai-api")
        let harbor = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\n\r\nunauthorized: unauthorized to access repository: team/app, action: pull: unauthorized to access repository: team/app, action: pull"
        )
        #expect(harbor.deniedBy == "harbor")
        let express = try diagnose("HTTP/1.1 429 Too Many Requests\r\n\r\nToo many requests, please try again later.")
        #expect(express.deniedBy == "express")
        #expect(express.cause == .rateLimited)
    }

    @Test("a body that is only a refusal of the credential reads as credentials not accepted")
    func bareCredentialRefusal() throws {
        for body in ["Invalid key", "Authentication error"] {
            let d = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\n" + body)
            #expect(d.deniedBy == "unknown", "\(body)")
            #expect(d.cause == .invalidCredentials, "\(body)")
        }
    }

    @Test("the same wording rephrased: expired credentials, not invalid ones")
    func expiredRephrased() throws {
        for body in [
            "Your authorization token has expired. Reauthenticate and try again.",
            "{\"message\":\"The access token provided is expired, revoked or malformed\"}",
            "{\"error\":\"tokenExpired\",\"detail\":\"Token is expired since 10 minutes\"}",
        ] {
            let d = try diagnose("HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n\r\n" + body)
            #expect(d.cause == .expiredCredentials || d.cause == .invalidCredentials, "\(body)")
        }
        let d = try diagnose("HTTP/1.1 401 Unauthorized\r\n\r\nOAuth token has expired. Please obtain a new token.")
        #expect(d.cause == .expiredCredentials)
    }

    @Test("Google's error format on a host that is not Google Cloud's names no system, but gives the cause")
    func sharedFormatBehindFrontDoor() throws {
        let raw = """
            HTTP/1.1 403 Forbidden\r
            Content-Type: application/json\r
            \r
            {"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"IAM_PERMISSION_DENIED"}]}}
            """
        let behind = try diagnose(raw, url: "https://people.googleapis.com/v1/people/me")
        #expect(behind.deniedBy == "unknown")
        #expect(behind.cause == .insufficientPermissions)
        #expect(behind.evidence.contains { $0.contains("host: people.googleapis.com") })
        let own = try diagnose(raw, url: "https://cloudresourcemanager.googleapis.com/v3/projects/p")
        #expect(own.deniedBy == "google-cloud")
        let noURL = try diagnose(raw)
        #expect(noURL.deniedBy == "google-cloud")
    }

    @Test("services sharing one host are told apart by the request path (signature condition url)")
    func sharedHostToldApartByPath() throws {
        let raw = """
            HTTP/1.1 403 Forbidden\r
            Content-Type: application/json\r
            \r
            {"error":{"code":403,"message":"Forbidden","errors":[{"message":"Forbidden","domain":"global","reason":"forbidden"}]}}
            """
        let youtube = try diagnose(raw, url: "https://www.googleapis.com/youtube/v3/search?part=snippet&q=x")
        #expect(youtube.deniedBy == "youtube-data-api")
        #expect(youtube.evidence.contains { $0.contains("www.googleapis.com/youtube/") })
        let storage = try diagnose(raw, url: "https://www.googleapis.com/storage/v1/b/bucket/o")
        #expect(storage.deniedBy != "youtube-data-api")
        #expect(!storage.evidence.contains { $0.contains("www.googleapis.com/youtube/") })
    }

    @Test("the request host names the system: npm registry")
    func hostNamesSystem() throws {
        let d = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\nYou do not have permission to publish \"left-pad\". Are you logged in as the correct user?",
            url: "https://registry.npmjs.org/left-pad")
        #expect(d.deniedBy == "npm-registry")
        #expect(d.cause == .insufficientPermissions)
    }

    @Test("an anonymous caller is missing credentials, not a caller without permission")
    func anonymous() throws {
        let d = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{\"Message\":\"User: anonymous is not authorized to perform: es:ESHttpGet\"}"
        )
        #expect(d.cause == .missingCredentials)
    }

    @Test("a secondary rate limit with quota left is a rate limit, not a permission error")
    func secondaryLimit() throws {
        let raw = """
            HTTP/1.1 403 Forbidden\r
            X-GitHub-Request-Id: 1:2:3\r
            X-RateLimit-Remaining: 4980\r
            Content-Type: application/json\r
            \r
            {"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
            """
        let d = try diagnose(raw)
        #expect(d.deniedBy == "github-api")
        #expect(d.cause == .rateLimited)
    }

    @Test("whether credentials were sent decides a bare 401")
    func credentialsSent() throws {
        let raw = "HTTP/1.1 401 Unauthorized\r\n\r\n"
        #expect(try diagnose(raw, credentials: false).cause == .missingCredentials)
        #expect(try diagnose(raw, credentials: true).cause == .invalidCredentials)
    }

    @Test("a system outside the knowledge base is 'unknown', with the server software and the host's domain")
    func unknownReport() throws {
        let d = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nServer: Acme-Edge/2.1\r\nContent-Type: application/json\r\n\r\n{\"problem\":\"denied\"}",
            url: "https://api.shop.example.co.uk/orders")
        #expect(d.deniedBy == "unknown")
        #expect(d.layer == "unknown")
        #expect(d.evidence.contains { $0.contains("Acme-Edge/2.1") })
        #expect(d.evidence.contains { $0.contains("domain example.co.uk") })
    }

    @Test("the default nginx 403 page lists the candidate causes and the command that decides")
    func nginxCandidates() throws {
        let d = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nServer: nginx/1.25.3\r\nContent-Type: text/html\r\n\r\n<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1></center><hr><center>nginx/1.25.3</center></body></html>"
        )
        #expect(d.deniedBy == "nginx")
        let causes = Set([d.cause] + d.alternatives.map(\.cause))
        #expect(causes.isSuperset(of: [.configDeny, .directoryListing, .filesystemPermission]))
        #expect(d.fix.contains { $0.contains("gatehouse doctor nginx") })
        #expect(d.fix.contains { $0.contains("directory index of") })
    }

    @Test("confidence is calibrated: an unknown system's bare status is not sure of itself")
    func calibration() throws {
        let bare = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\n")
        #expect(bare.confidence < 0.5)
        let strong = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\nX-GitHub-Request-Id: 1\r\nX-RateLimit-Remaining: 0\r\n\r\n{\"message\":\"API rate limit exceeded\"}"
        )
        #expect(strong.confidence > 0.8)
    }

    @Test("word matching: inflections, prefixes, several-word alternatives, a window")
    func words() {
        let text = BodyWords("The API key you supplied has expired; tokenExpired", isHTML: false)
        #expect(WordMatcher.matches(["expire", "api key"], within: 6, in: text))
        #expect(WordMatcher.matches(["expir*"], within: 12, in: text))
        #expect(WordMatcher.matches(["token"], within: 12, in: text))
        #expect(!WordMatcher.matches(["supplied", "token"], within: 2, in: text))
        let html = BodyWords("<html><script>var expired = 1</script><p>Access denied</p></html>", isHTML: true)
        #expect(!WordMatcher.matches(["expired"], within: 12, in: html))
        #expect(WordMatcher.matches(["access denied"], within: 12, in: html))
    }

    @Test("a registry error in the OCI format on a host the knowledge base does not know names no system")
    func ociFormatIsShared() throws {
        let raw =
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}"
        let d = try diagnose(raw, url: "https://registry.example.org/v2/app/manifests/1.0", credentials: false)
        #expect(d.deniedBy == "unknown")
        #expect(d.cause == .missingCredentials)
    }

    @Test("a 403 to a request without credentials is missing credentials, not a permission an identity lacks")
    func anonymousForbidden() throws {
        let raw =
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{\"message\":\"You do not have permission to access this resource\"}"
        #expect(try diagnose(raw, credentials: false).cause == .missingCredentials)
        #expect(try diagnose(raw, credentials: true).cause == .insufficientPermissions)
    }

    @Test("a vendor-neutral error code gives the cause for a system the knowledge base does not know")
    func errorCodes() throws {
        let expired = try diagnose("HTTP/1.1 401 Unauthorized\r\n\r\n{\"error\":{\"code\":\"token_expired\",\"message\":\"Unauthorized\"}}")
        #expect(expired.deniedBy == "unknown")
        #expect(expired.cause == .expiredCredentials)
        let scope = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\n{\"error\":\"missing_scope\",\"needed\":\"chat:write\"}")
        #expect(scope.cause == .insufficientScope)
    }

    @Test("a 407 is judged without the request host: a proxy on the way answered")
    func proxyAuthIgnoresHost() throws {
        let raw = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\n\r\n"
        let d = try diagnose(raw, url: "https://api.openai.com/v1/models")
        #expect(d.deniedBy != "openai-api")
        #expect(d.cause == .missingCredentials)
    }

    @Test("an error object printed by a client (Python dict, Ruby hash, JavaScript literal, after a prefix) reads as the raw JSON")
    func printedErrorObjects() throws {
        let raw = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"token_expired\",\"message\":\"Session ended\",\"param\":null}}"
        )
        #expect(raw.cause == .expiredCredentials)
        for printed in [
            "{'error': {'code': 'token_expired', 'message': 'Session ended', 'param': None}}",
            "{\"error\"=>{\"code\"=>\"token_expired\", \"message\"=>\"Session ended\"}}",
            "{\n  error: { code: 'token_expired', message: \"Session ended\", },\n}",
            "Error code: 401 - {'error': {'code': 'token_expired', 'message': 'Session ended'}}",
        ] {
            let d = try diagnose("HTTP/1.1 401 Unauthorized\r\n\r\n" + printed)
            #expect(d.cause == raw.cause, "\(printed)")
        }
    }

    @Test("an error that links to its vendor's documentation names the vendor")
    func linkNamesVendor() throws {
        let text = "Number of request tokens has exceeded your per-minute rate limit; please try again later."
        let linked = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\n\r\n" + text + " See https://docs.anthropic.com/en/api/rate-limits.")
        #expect(linked.deniedBy == "anthropic-api")
        #expect(linked.cause == .rateLimited)
        let bare = try diagnose("HTTP/1.1 429 Too Many Requests\r\n\r\n" + text)
        #expect(bare.deniedBy != "anthropic-api")
    }

    @Test("a reason phrase that is a sentence is read like the body")
    func sentenceReasonPhrase() throws {
        let d = try diagnose("HTTP/1.1 403 No valid crumb was included in the request\r\nContent-Length: 0\r\n\r\n")
        #expect(d.deniedBy == "jenkins")
        #expect(d.cause == .csrf)
    }

    @Test("precise wording refines the cause of a system the knowledge base does not know, as of a named one")
    func unknownSystemRefined() throws {
        // A 429 whose words say the credits ran out is billing, not a per-minute limit.
        let credits = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\n\r\nYour team has either used all available credits or reached its monthly spending limit.")
        #expect(credits.deniedBy == "unknown")
        #expect(credits.cause == .accountSuspended)
        // A limit that passes with time stays a rate limit.
        let hourly = try diagnose("HTTP/1.1 429 Too Many Requests\r\n\r\nYou have exceeded your usage limits. Please try again later.")
        #expect(hourly.cause == .rateLimited)
        let code = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"message\":\"quota\",\"code\":\"insufficient_quota\"}}"
        )
        #expect(code.cause == .accountSuspended)
    }

    @Test("a framework's origin check is CSRF protection, whatever the framework")
    func crossSiteForm() throws {
        for body in ["Cross-site POST form submissions are forbidden", "{\"message\":\"Cross-site PUT form submissions are forbidden\"}"] {
            let d = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\n" + body)
            #expect(d.cause == .csrf, "\(body)")
        }
    }

    @Test("wording of a token that lacks a permission, an unknown key and a retired password login")
    func credentialWording() throws {
        let token = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\nthis token does not have the required permissions to perform this action")
        #expect(token.cause == .insufficientScope)
        let unknownKey = try diagnose("HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{\"error\":\"key doesn't exist\"}")
        #expect(unknownKey.cause == .invalidCredentials)
        let password = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\nUsername/Password authentication is no longer supported. Migrate to API Tokens instead.")
        #expect(password.cause == .invalidCredentials)
        let otp = try diagnose("HTTP/1.1 401 Unauthorized\r\n\r\nYour OTP code is incorrect. Please check it and retry.")
        #expect(otp.cause == .invalidCredentials)
    }

    @Test("an acronym before a word is split from it: JWSInvalidSignature reads as an invalid signature")
    func acronymSplit() throws {
        #expect(BodyWords("JWSError JWSInvalidSignature", isHTML: false).words == ["jws", "error", "jws", "invalid", "signature"])
        #expect(BodyWords("list the APIs", isHTML: false).words == ["list", "the", "apis"])
        let d = try diagnose("HTTP/1.1 401 Unauthorized\r\n\r\nJWSError JWSInvalidSignature")
        #expect(d.cause == .signatureMismatch)
    }

    @Test("Google's error shape needs Google's status string: a numeric status is another API's")
    func googleShapeNeedsStatusString() throws {
        let d = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"status\":401,\"code\":\"UNAUTHORIZED\",\"message\":\"Unauthorized\"}}"
        )
        #expect(d.deniedBy == "unknown")
    }

    @Test("an exception class names its framework: Symfony writes Spring Security's sentence too")
    func exceptionClassNamesFramework() throws {
        let d = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\n\r\nSymfony\\Component\\HttpKernel\\Exception\\HttpException:\nFull authentication is required to access this resource."
        )
        #expect(d.deniedBy == "symfony")
    }

    @Test("a 401 that names an action or role the caller lacks, to a request with credentials, is a permission")
    func permissionBehind401() throws {
        let d = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\n\r\nThe current user is not authorized to perform the requested action.", credentials: true)
        #expect(d.cause == .insufficientPermissions)
        // Without credentials the same status is still a caller who must authenticate.
        let anonymous = try diagnose("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n", credentials: false)
        #expect(anonymous.cause == .missingCredentials)
    }

    @Test("configuration wording: an unverified sender, a User-Agent policy, an authentication scheme not configured")
    func configurationWording() throws {
        for body in [
            "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved.",
            "Please comply with the User-Agent policy.",
            "{\"code\": 401, \"message\": \"oidc auth is not configured, please try another auth scheme\"}",
        ] {
            let d = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\n" + body, credentials: true)
            #expect(d.cause == .configDeny, "\(body)")
        }
    }

    @Test("a registry error code every registry writes names no registry; the product's own wording does")
    func registryCodeNamesNoRegistry() throws {
        let code = try diagnose("HTTP/1.1 429 Too Many Requests\r\n\r\ntoomanyrequests: Rate exceeded")
        #expect(code.deniedBy != "docker-hub")
        #expect(code.cause == .rateLimited)
        let hub = try diagnose("HTTP/1.1 429 Too Many Requests\r\n\r\ntoomanyrequests: You have reached your pull rate limit.")
        #expect(hub.deniedBy == "docker-hub")
    }

    @Test("documented error shapes name their system: Alibaba OSS over S3's shared XML, Quay's registry, SendGrid, IIS's page")
    func documentedShapes() throws {
        let oss = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>InvalidAccessKeyId</Code>\n"
                + "  <Message>The OSS Access Key Id you provided does not exist in our records.</Message>\n  <RequestId>5E9B</RequestId>\n"
                + "  <HostId>bucket.oss-cn-qingdao.aliyuncs.com</HostId>\n</Error>"
        )
        #expect(oss.deniedBy == "alibaba-oss")
        #expect(oss.cause == .invalidCredentials)
        let quay = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\n\r\nunauthorized: access to the requested resource is not authorized", credentials: false)
        #expect(quay.deniedBy == "quay")
        #expect(quay.cause == .resourceState)
        #expect(quay.alternatives.contains { $0.cause == .missingCredentials } || quay.fix.joined().contains("log in"))
        let sendgrid = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{\"errors\":[{\"field\":null,\"message\":\"access forbidden\"}]}",
            credentials: true)
        #expect(sendgrid.deniedBy == "sendgrid-api")
        #expect(sendgrid.cause == .insufficientPermissions)
        let iis = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/html\r\n\r\n<html><head><title>401 - Unauthorized: Access is denied due to invalid credentials.</title></head></html>"
        )
        #expect(iis.deniedBy == "microsoft-iis")
        let drf = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\nCSRF Failed: CSRF cookie not set.")
        #expect(drf.deniedBy == "django-rest-framework")
        #expect(drf.cause == .csrf)
        let csurf = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\ninvalid csrf token")
        #expect(csurf.deniedBy == "express")
        let spring = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\nInvalid CSRF Token 'null' was found on the request parameter '_csrf' or header 'X-CSRF-TOKEN'.")
        #expect(spring.deniedBy == "spring-security")
    }

    @Test("a CDN's or web server's headers on a JSON answer do not claim it; a key-format sentence is not Bedrock's alone")
    func carriersDoNotClaim() throws {
        let json = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\ncf-ray: 6fc3c7cc5c7c9bfe-FRA\r\nServer: cloudflare\r\n\r\n",
            credentials: true)
        #expect(json.deniedBy == "unknown")
        let apache = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nServer: Apache\r\nContent-Type: application/json\r\n\r\n", credentials: false)
        #expect(apache.deniedBy == "unknown")
        let format = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\n\r\n{\"code\":\"AuthenticationError\",\"message\":\"The API key format is incorrect.\"}",
            credentials: true)
        #expect(format.deniedBy == "unknown")
        #expect(format.cause == .invalidCredentials)
        let bedrock = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\n{\"Message\":\"Invalid API Key format: Must start with pre-defined prefix\"}")
        #expect(bedrock.deniedBy == "aws-bedrock")
    }

    @Test("wording that names the kind of credential: a restricted key or app, a token that cannot be read")
    func credentialKindWording() throws {
        for body in [
            #"{"error":{"code":"FORBIDDEN","message":"Fire Pass API keys are not authorized for this route."}}"#,
            #"{"message":"access is forbidden with a JWT issued from a personal access token"}"#,
            #"{"error":{"message":"Your app does not have the necessary permissions to use this endpoint.","code":"PERMISSION_DENIED"}}"#,
            #"{"type":"error","error":{"type":"permission_error","message":"OAuth token does not meet scope requirement user:profile"}}"#,
        ] {
            let d = try diagnose("HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n" + body, credentials: true)
            #expect(d.cause == .insufficientScope, "\(body)")
        }
        for body in [
            #"{"error": "Failed to parse Connect Session Auth Token"}"#,
            "Access is denied. Retrying will not help. Please verify your key= parameter.",
        ] {
            let d = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\n" + body, credentials: true)
            #expect(d.cause == .invalidCredentials, "\(body)")
        }
        // 'Invalid or missing' decides nothing alone; with credentials sent they were not accepted.
        let sent = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\nAttempted administrative access with invalid or missing key!", credentials: true)
        #expect(sent.cause == .invalidCredentials)
        let anonymous = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\nInvalid or non-existent authentication information.", credentials: false)
        #expect(anonymous.cause == .missingCredentials)
    }

    @Test(
        "billing wording beyond credits: a balance to top up, a plan the call needs, access terminated; a temporary ban stays a rate limit")
    func billingAndSuspension() throws {
        let balance = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\n\r\n"
                + #"{"error":{"message":"Insufficient balance or no resource package. Please recharge."}}"#, credentials: true)
        #expect(balance.deniedBy == "unknown")
        #expect(balance.cause == .accountSuspended)
        let premium = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\n" + #"{"error":{"status":403,"message":"Player command failed: Premium required"}}"#,
            credentials: true)
        #expect(premium.cause == .accountSuspended)
        let terminated = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\n\r\nYour access was terminated due to violation of our policies.", credentials: true)
        #expect(terminated.cause == .accountSuspended)
        let temporary = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\n\r\nYou are being rate limited. The owner of this website has banned you temporarily from accessing this website."
        )
        #expect(temporary.cause == .rateLimited)
    }

    @Test("CSRF and request-signature wording in other words: Tornado's _xsrf, Django's origin check, a signature that failed")
    func csrfAndSignatureWording() throws {
        let xsrf = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\nHTTP 403: Forbidden ('_xsrf' argument missing from POST)")
        #expect(xsrf.cause == .csrf)
        let origin = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\nOrigin checking failed - https://app.example does not match any trusted origins.")
        #expect(origin.cause == .csrf)
        let signature = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\n" + #"{"error":{"code":"403","message":"Message Signature validation error"}}"#,
            credentials: true)
        #expect(signature.cause == .signatureMismatch)
    }

    @Test(
        "documented shapes of known systems: Keycloak's client flow and error handler, Artifactory's realm, Anthropic's region refusal, Harbor's message, Docker Hub's HAP429"
    )
    func knownSystemShapes() throws {
        let keycloak = try diagnose(
            "HTTP/1.1 400 Bad Request\r\n\r\n"
                + #"{"error":"unauthorized_client","error_description":"UNKNOWN_CLIENT: Client was not identified by any client authenticator"}"#
        )
        #expect(keycloak.deniedBy == "keycloak")
        #expect(keycloak.cause == .invalidCredentials)
        let keycloakHandler = try diagnose("HTTP/1.1 401 Unauthorized\r\n\r\n" + #"{"error":"HTTP 401 Unauthorized"}"#, credentials: true)
        #expect(keycloakHandler.deniedBy == "keycloak")
        let artifactory = try diagnose("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Artifactory Realm\"\r\n\r\n")
        #expect(artifactory.deniedBy == "jfrog-artifactory")
        let anthropic = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n"
                + #"{"error":{"type":"forbidden","message":"Request not allowed"}}"#,
            credentials: true)
        #expect(anthropic.deniedBy == "anthropic-api")
        #expect(anthropic.cause == .geoBlocked)
        let harbor = try diagnose("HTTP/1.1 401 Unauthorized\r\n\r\n" + #"{"errors":[{"code":"UNAUTHORIZED","message":"UnAuthorized"}]}"#)
        #expect(harbor.deniedBy == "harbor")
        #expect(harbor.cause == .missingCredentials)
        let hub = try diagnose("HTTP/1.1 429 Too Many Requests\r\n\r\nToo Many Requests (HAP429).")
        #expect(hub.deniedBy == "docker-hub")
        #expect(hub.cause == .rateLimited)
    }

    @Test("Server: nginx on a plain-text answer is the proxy in front of the application, not the denier")
    func plainTextBehindNginx() throws {
        let plain = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nServer: nginx/1.8.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNo CSRF token found in headers"
        )
        #expect(plain.deniedBy == "unknown")
        #expect(plain.cause == .csrf)
    }
    @Test(
        "a name is given only on evidence of that software: err_code is not Squid's ERR_ code, Apache-Coyote is not Apache httpd, App Engine's page is not Cloud Armor's"
    )
    func evidenceOfTheSoftwareItself() throws {
        let errCode = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\n\r\n" + #"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"0000"}"#)
        #expect(errCode.deniedBy == "unknown")
        #expect(errCode.cause == .invalidCredentials)
        let squid = try diagnose("HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n<html><body>ERR_ACCESS_DENIED</body></html>")
        #expect(squid.deniedBy == "squid")
        let coyote = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nServer: Apache-Coyote/1.1\r\nContent-Type: text/plain\r\n\r\n"
                + "The resource requires authentication, which was not supplied with the request")
        #expect(coyote.deniedBy == "unknown")
        let httpd = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nServer: Apache/2.4.41 (Ubuntu)\r\nContent-Type: text/plain\r\n\r\n"
                + "The resource requires authentication, which was not supplied with the request")
        // Apache httpd's own Server header, on a message that is not its page: served through it.
        #expect(httpd.deniedBy == "unknown")
        #expect(httpd.servedThrough == ["apache-httpd"])
        let gfe =
            "HTTP/1.1 403 Forbidden\r\nServer: Google Frontend\r\nContent-Type: text/html\r\n\r\n<html><body><h1>We're sorry...</h1></body></html>"
        let appEngine = try diagnose(gfe, url: "https://example-app.appspot.com/like")
        #expect(appEngine.deniedBy == "unknown")
        let armor = try diagnose(gfe, url: "https://shop.example.com/like")
        #expect(armor.deniedBy == "google-cloud-armor")
    }
    @Test("a shared format that links to another vendor's site names nobody: Square's errors list is not a registry's")
    func sharedFormatLinkingElsewhere() throws {
        let square = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n"
                + #"{"errors":[{"category":"AUTHENTICATION_ERROR","code":"UNAUTHORIZED","detail":"The Authorization http header of your request was malformed. See https://developer.squareup.example-pay.net/docs/headers."}]}"#
        )
        #expect(square.deniedBy == "unknown")
        let registry = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n"
                + #"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#)
        #expect(registry.deniedBy == "docker-registry")
        #expect(registry.cause == .missingCredentials)
    }
    @Test(
        "a page or object printed without its markup or cut short still names its writer; a bare 'Permission denied:' prefix is not Consul's"
    )
    func printedShapes() throws {
        let iis = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\n403 - Forbidden: Access is denied.\nYou do not have permission to view this directory or page using the credentials that you supplied."
        )
        #expect(iis.deniedBy == "microsoft-iis")
        let dropbox = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\n\r\n" + #"{"error_summary": "expired_access_token/.", "error": {".tag": "expired_access_token"}"#)
        #expect(dropbox.deniedBy == "dropbox-api")
        #expect(dropbox.cause == .expiredCredentials)
        let google = try diagnose("HTTP/1.1 403 Forbidden\r\n\r\nPermission denied: Consumer 'api_key:AIzaXXXX' has been suspended.")
        #expect(google.deniedBy != "consul")
        let consul = try diagnose(
            "HTTP/1.1 403 Forbidden\r\n\r\nPermission denied: token with AccessorID '00000000-0000-0000-0000-000000000000' lacks permission 'key:read' on \"app\""
        )
        #expect(consul.deniedBy == "consul")
    }

    @Test("a documented API path of self-hosted software names it, moderately; the software's own or another vendor's header wins")
    func documentedPaths() throws {
        let bare = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
        for (url, system) in [
            ("https://cloud.example.com/remote.php/dav/files/alice/", "nextcloud"),
            ("https://sso.example.com/auth/admin/realms/corp/users", "keycloak"),
            ("https://git.example.com/api/packages/team/maven/org/example/app/1.0/app-1.0.pom", "gitea"),
            ("https://tracker.example.com/rest/api/2/search?jql=project%3DX", "atlassian-api"),
            ("http://metrics.example.net:8086/api/v2/write?org=o&bucket=b", "influxdb"),
        ] {
            let d = try diagnose(bare, url: url)
            #expect(d.deniedBy == system, "\(url)")
            #expect(d.confidence < 0.75, "\(url): a path alone is moderate evidence")
        }
        let influx = try diagnose(bare, url: "http://metrics.example.net:8086/api/v2/write?org=o&bucket=b")
        #expect(
            Report.render(influx, response: nil, knowledge: Fixtures.knowledge).contains(
                "InfluxDB (influxdb), at the database service layer"))
        // Another vendor's own mark outweighs the path: Cloudflare's block page in front of a Nextcloud.
        let blocked = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nServer: cloudflare\r\nCF-RAY: 8a1b2c3d4e5f6a7b-FRA\r\nContent-Type: text/html\r\n\r\n<html><title>Access denied | cloud.example.com used Cloudflare to restrict access</title><body>Error 1020</body></html>",
            url: "https://cloud.example.com/remote.php/dav/files/alice/")
        #expect(blocked.deniedBy == "cloudflare")
        // An undistinctive path names nobody.
        let generic = try diagnose(bare, url: "https://api.example.com/api/v1/users")
        #expect(generic.deniedBy == "unknown")
    }

    @Test("a front door's marks on another's denial: the service behind it is unknown, served through the front door")
    func servedThroughFrontDoor() throws {
        // A CDN's headers on a plain-text message: the service behind Cloudflare wrote it.
        let message = try diagnose(
            "HTTP/2 403\r\ncontent-type: text/plain; charset=utf-8\r\ncf-cache-status: MISS\r\nserver: cloudflare\r\ncf-ray: 3966421b9a6179f3-SEA\r\n\r\nPackage size exceeded the configured limit of 50 MB.\n",
            url: "https://cdn.example.net/gh/owner/repo/")
        #expect(message.deniedBy == "unknown")
        #expect(message.servedThrough == ["cloudflare"])
        #expect(message.evidence.contains { $0.contains("served through Cloudflare") })
        // Fastly's cache headers on an application's JSON error.
        let json = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nX-Served-By: cache-sjc10061-SJC\r\nX-Timer: S1741752971.346085,VS0,VE96\r\n\r\n"
                + #"{"data":{"error":"Too many uploads"},"success":false,"status":429}"#)
        #expect(json.deniedBy == "unknown")
        #expect(json.servedThrough == ["fastly"])
        #expect(json.cause == .rateLimited)
        let text = Report.render(json, response: nil, knowledge: Fixtures.knowledge)
        #expect(text.contains("the service behind Fastly"))
        #expect(text.contains("Served through: Fastly (fastly)"))
        // The front door's own denial still names it: Cloudflare's 1020 page, nginx's default page.
        let cloudflare = try diagnose(try Fixtures.text("responses/cloudflare-1020.http"))
        #expect(cloudflare.deniedBy == "cloudflare")
        #expect(cloudflare.servedThrough.isEmpty)
        let nginx = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n\r\n<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n",
            url: "https://www.example.org/private/")
        #expect(nginx.deniedBy == "nginx")
        // Another server's own page behind a CDN: the CDN is the way, not the writer.
        let behind = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: text/html\r\ncf-ray: 99d7527ecdf5e677-DEN\r\nserver: cloudflare\r\n\r\n<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>openresty/1.27.4</center>\r\n</body>\r\n</html>\r\n"
        )
        #expect(behind.deniedBy == "unknown")
        #expect(behind.servedThrough == ["cloudflare"])
        // A named system behind a CDN says so too.
        let gitlab = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nX-Gitlab-Meta: {\"correlation_id\":\"01J0\"}\r\ncf-ray: 8a1b2c3d4e5f6a7b-FRA\r\n\r\n"
                + #"{"message":"403 Forbidden"}"#)
        #expect(gitlab.deniedBy == "gitlab-api")
        #expect(gitlab.servedThrough == ["cloudflare"])
    }

    @Test("a placeholder written for the host names the software it stands for, as a host named after it would")
    func placeholderHosts() throws {
        let bare = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
        for (url, system) in [
            ("http://<minio-host>:9000/bucket/photo.jpg", "minio"),
            ("$gitea_url/api/v1/version", "gitea"),
            ("ARTIFACTORY_URL/-/user/org.couchdb.user:USER_NAME", "jfrog-artifactory"),
        ] {
            let d = try diagnose(bare, url: url)
            #expect(d.deniedBy == system, "\(url)")
        }
        let other = try diagnose(bare, url: "http://<service-url>/api/items")
        #expect(other.deniedBy == "unknown")
    }

    // Fixtures of the review of the path evidence and of front doors (raw responses as a user saves them).
    static let s3Denied =
        "HTTP/1.1 403 Forbidden\r\nx-amz-request-id: 4442587FB7D0A2F9\r\nx-amz-id-2: vlR7PnpV2Ce81puvz23kdVy0PzX3xWq4EXAMPLE=\r\nContent-Type: application/xml\r\nServer: AmazonS3\r\n\r\n"
        + "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>4442587FB7D0A2F9</RequestId><HostId>vlR7PnpV2Ce81puvz23kdVy0PzX3xWq4EXAMPLE=</HostId></Error>\n"
    static let googleDenied =
        "HTTP/1.1 403 Forbidden\r\nServer: ESF\r\nContent-Type: application/json; charset=UTF-8\r\nVary: X-Origin\r\n\r\n"
        + #"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}"#
    static let appJSON = #"{"error":{"code":"forbidden","message":"You do not have access to project 42"}}"#

    @Test("a request path does not name a system when another vendor's own header or body shape is on the response")
    func pathYieldsToVendorMarks() throws {
        for url in [
            "https://auth.example.com/admin/realms/master/users", "https://x.example.com/api/v4/projects/1",
            "https://x.example.com/v1/sys/health",
        ] {
            let s3 = try diagnose(Self.s3Denied, url: url)
            #expect(["unknown", "aws-s3"].contains(s3.deniedBy), "\(url): \(s3.deniedBy)")
            #expect(s3.cause == .insufficientPermissions, "\(url)")
            let google = try diagnose(Self.googleDenied, url: url)
            #expect(["unknown", "google-cloud"].contains(google.deniedBy), "\(url): \(google.deniedBy)")
            #expect(google.cause == .insufficientPermissions, "\(url)")
        }
        // A front door's passage mark (nginx's Server header) leaves the path its say.
        let behindNginx = try diagnose(
            "HTTP/1.1 401 Unauthorized\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n",
            url: "https://sso.example.com/admin/realms/corp/users")
        #expect(behindNginx.deniedBy == "keycloak")
    }

    @Test("path conditions read the URL's path only: a path in the query or the fragment names nobody")
    func pathNotQueryOrFragment() throws {
        let bare = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
        for url in [
            "https://app.example.com/login?next=/remote.php/dav/", "https://app.example.com/#/remote.php/dav/",
            "https://app.example.com/search?q=/admin/realms", "https://app.example.com/?r=/rest/api/2/x",
        ] {
            let d = try diagnose(bare, url: url)
            #expect(d.deniedBy == "unknown", "\(url): \(d.deniedBy)")
        }
        #expect(ResponseClassifier.requestPath("https://h.example/a/b?x=/c#/d") == "/a/b")
        #expect(ResponseClassifier.requestPath("h.example/a/b#x") == "/a/b")
        #expect(ResponseClassifier.requestPath("/a/b?c") == "/a/b")
        #expect(ResponseClassifier.requestPath("https://h.example") == "")
        // A documented path mounted under a prefix still reads at a segment's start.
        #expect(try diagnose(bare, url: "https://h.example.com/nextcloud/remote.php/dav/files/u/").deniedBy == "nextcloud")
    }

    @Test("generic API paths name no self-hosted software; a path alone keeps the cause the response tells")
    func genericPathsNameNobody() throws {
        let bare = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
        for path in [
            "/v1/catalog/services", "/api/v2/query", "/api/v2/authorizations", "/api/v2.0/users/me", "/service/token",
            "/api/states/CA", "/v1/auth/jwt/refresh", "/v1/auth/github/callback", "/v1/auth/oidc/callback", "/job/42/api",
            "/manager/status", "/x/_session", "/docs/how-to-call/v1/sys/health", "/api/v2/write",
        ] {
            let d = try diagnose(bare, url: "https://api.example.com" + path)
            #expect(d.deniedBy == "unknown", "\(path): \(d.deniedBy)")
        }
        // The full documented shapes still name the software.
        #expect(try diagnose(bare, url: "https://h.example.com/v1/sys/health").deniedBy == "hashicorp-vault")
        #expect(try diagnose(bare, url: "http://h.example.com:8086/api/v2/write?org=o&bucket=b").deniedBy == "influxdb")
        #expect(try diagnose(bare, url: "http://h.example.com:8123/api/states/sensor.x").deniedBy == "home-assistant")
        // An empty 403 at a Nextcloud path: Nextcloud, with the cause the response tells, not Nextcloud's default.
        let empty = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", url: "https://cloud.example.com/remote.php/dav/files/u/")
        let before = try diagnose("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        #expect(empty.deniedBy == "nextcloud")
        #expect(empty.cause == before.cause)
        #expect(empty.cause != .invalidCredentials)
        #expect(empty.confidence < 0.5, "not 'fairly sure'")
    }

    @Test("a front door's own page names it: Fastly's synthetic error page")
    func fastlyOwnPage() throws {
        let d = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nServer: Varnish\r\nRetry-After: 0\r\nContent-Type: text/html; charset=utf-8\r\nX-Served-By: cache-fra-eddf8230000-FRA\r\nX-Cache: MISS\r\nX-Timer: S1700000000.123456,VS0,VE0\r\nVia: 1.1 varnish\r\n\r\n"
                + "<html><head><title>403 Forbidden</title></head><body><h1>Error 403 Forbidden</h1><p>Forbidden</p><h3>Error 54113</h3><p>Details: cache-fra-eddf8230000-FRA 1700000000 1234567890</p><hr><p>Varnish cache server</p></body></html>"
        )
        #expect(d.deniedBy == "fastly")
        #expect(d.servedThrough.isEmpty)
    }

    @Test("a generic Varnish Via header does not list Fastly as a front door")
    func varnishViaIsNotFastly() throws {
        let only = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nVia: 1.1 varnish (Varnish/7.4)\r\nContent-Type: application/json\r\n\r\n" + Self.appJSON)
        #expect(only.deniedBy == "unknown")
        #expect(!only.servedThrough.contains("fastly"))
        let withVarnish = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nVia: 1.1 varnish (Varnish/7.4)\r\nX-Varnish: 32770 3\r\nServer: nginx\r\nContent-Type: application/json\r\n\r\n"
                + Self.appJSON)
        #expect(withVarnish.deniedBy == "unknown")
        #expect(withVarnish.servedThrough.contains("varnish"))
        #expect(!withVarnish.servedThrough.contains("fastly"))
        // Fastly's own Via form with its cache headers still lists it.
        let fastly = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nVia: 1.1 varnish\r\nX-Served-By: cache-sjc10061-SJC\r\nContent-Type: application/json\r\n\r\n"
                + Self.appJSON)
        #expect(fastly.servedThrough == ["fastly"])
    }

    @Test("an XHTML page is a page, not an application's XML: the front door's, like its text/html page")
    func xhtmlPageBehindAFrontDoor() throws {
        let head = "HTTP/1.1 403 Forbidden\r\ncf-ray: 8a1b2c3d4e5f6a7b-FRA\r\nserver: cloudflare\r\n"
        let page =
            "<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1></center><hr><center>cloudflare</center></body></html>"
        let xhtml = try diagnose(head + "Content-Type: application/xhtml+xml\r\n\r\n" + page, url: "https://www.example.org/x")
        #expect(xhtml.deniedBy == "cloudflare")
        #expect(try diagnose(head + "Content-Type: text/html\r\n\r\n" + page, url: "https://www.example.org/x").deniedBy == "cloudflare")
    }

    @Test("InfluxDB's documented parameters are read in the URL's query alone, not in its fragment")
    func influxQueryParameters() throws {
        let bare = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
        #expect(try diagnose(bare, url: "http://example.org/api/v2/write?precision=s&org=o").deniedBy == "influxdb")
        #expect(try diagnose(bare, url: "http://example.org/api/v2/write#x?org=o").deniedBy == "unknown")
        let hostile = "http://example.org/api/v2/write?" + String(repeating: "?&", count: 8_000)
        #expect(try diagnose(bare, url: hostile).deniedBy == "unknown")
    }

    @Test("a body many systems write (a bare Forbidden) does not unseat another system's mark")
    func commonShapeYields() throws {
        let d = try diagnose("HTTP/1.1 403 Forbidden\r\nServer: AkamaiGHost\r\nContent-Type: text/plain\r\n\r\nForbidden\n")
        #expect(d.deniedBy == "akamai")
        #expect(d.cause == .wafBlocked)
        // Alone, the shape still names Traefik.
        let traefik = try diagnose("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nForbidden\n")
        #expect(traefik.deniedBy == "traefik")
    }

    @Test("Cloudflare's documented JSON form of its 1xxx errors names Cloudflare")
    func cloudflareJSON1xxx() throws {
        let d = try diagnose(
            "HTTP/1.1 403 Forbidden\r\nServer: cloudflare\r\nCF-RAY: 8a1b2c3d4e5f6789-FRA\r\nContent-Type: application/json\r\n\r\n"
                + #"{"type":"https://developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-1xxx-errors/error-1020/","title":"Access denied","status":403,"error_code":1020,"error_name":"access_denied","ray_id":"8a1b2c3d4e5f6789","cloudflare_error":true,"retryable":false}"#
        )
        #expect(d.deniedBy == "cloudflare")
        #expect(d.cause == .wafBlocked)
        #expect(d.servedThrough.isEmpty)
        let limited = try diagnose(
            "HTTP/1.1 429 Too Many Requests\r\nServer: cloudflare\r\nContent-Type: application/problem+json\r\n\r\n"
                + #"{"type":"https://developers.cloudflare.com/x/error-1015/","title":"You are being rate limited","status":429,"error_code":1015,"cloudflare_error":true,"retryable":true}"#
        )
        #expect(limited.deniedBy == "cloudflare")
        #expect(limited.cause == .rateLimited)
    }

    @Test("a web server's Server header lists it as served_through on an application's JSON, like IIS's, Google's, Azure's")
    func servedThroughConsistent() throws {
        for (server, system) in [
            ("nginx/1.24.0", "nginx"), ("Apache/2.4.58 (Debian)", "apache-httpd"), ("Microsoft-IIS/10.0", "microsoft-iis"),
            ("AkamaiGHost", "akamai"),
        ] {
            let d = try diagnose("HTTP/1.1 403 Forbidden\r\nServer: \(server)\r\nContent-Type: application/json\r\n\r\n" + Self.appJSON)
            #expect(d.deniedBy == "unknown", "\(server)")
            #expect(d.servedThrough == [system], "\(server): \(d.servedThrough)")
        }
    }
}
