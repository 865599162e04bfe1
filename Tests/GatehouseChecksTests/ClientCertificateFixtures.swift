/// Client-certificate fixtures made with the OpenSSL command line (an implementation independent of
/// swift-certificates), EC P-256, issued 2026-12-06 and valid for ten years unless noted. They are verified
/// at `ClientCertificateFixtures.now`, two days after issue, so results never drift with the clock.
///
/// - `ca`: CN=Fixture Client CA, the trusted root (CA:TRUE, keyCertSign). `rogue`: CN=Rogue CA, untrusted.
/// - `billing`: CN=billing-service, CA:FALSE, keyUsage digitalSignature, EKU clientAuth, by `ca`.
/// - `forged`: CN=admin signed with billing's key (the review's S1 forgery).
/// - `inter`: CN=Fixture Issuing CA, CA:TRUE pathlen:0, by `ca`; `viaInter`: CN=admin by `inter`.
/// - `serverOnly` (EKU serverAuth), `noEKU` (no EKU), `caAsClient` (CA:TRUE with clientAuth): CN=admin by `ca`.
/// - `noCertSign`: CN=Signing Only, CA:TRUE but keyUsage digitalSignature only; `underNoCertSign` by it.
/// - `below`: CN=Below CA, CA:TRUE, by `inter` (pathlen 0); `underBelow` by it.
/// - `short`: CN=Short CA, valid one day (expired at `now`); `underShort` by it.
/// - `rogueLeaf`: CN=billing-service by `rogue`.
/// - `impostor`: self-signed with its own key, subject CN=Fixture Client CA (the root's name).
/// - `v1Leaf`: CN=billing-service by `ca`, version 1 (no extensions: what `openssl x509 -req` makes
///   without an extension file); `forgedByV1`: CN=admin, clientAuth, signed with v1Leaf's key.
enum ClientCertificateFixtures {
    /// Two days after the fixtures were issued.
    static let now: Double = 1796754337

    static let ca = """
        -----BEGIN CERTIFICATE-----
        MIIBnTCCAUOgAwIBAgIUdkiXUBY//WEZwnvZWAwQ7MV/MekwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcN
        MzYxMjAzMTgyNTM2WjAcMRowGAYDVQQDDBFGaXh0dXJlIENsaWVudCBDQTBZMBMG
        ByqGSM49AgEGCCqGSM49AwEHA0IABP/3wFTu2yDZGQfRldnrVXtoSDuEHDEOdCUP
        bD2iTefCNoZYuXOD1ppV3d7xeiMFRySPYOFb1n0N8wKCXk21HfWjYzBhMB0GA1Ud
        DgQWBBRdeFhOsPR/z2hy4ao/XAeFaxJnBDAfBgNVHSMEGDAWgBRdeFhOsPR/z2hy
        4ao/XAeFaxJnBDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggq
        hkjOPQQDAgNIADBFAiEAyMaZBW5y/rxbO3gnaScGzL0/Vc4Cupaj8y2Xy/S/YtAC
        ICX3IcJAmlgGKrLS5U8VLTEM/mdG6yxTFrnQi7jbRlas
        -----END CERTIFICATE-----
        """

    static let rogue = """
        -----BEGIN CERTIFICATE-----
        MIIBijCCATGgAwIBAgIUOpVlxIakX8CCwj98BYQanRn0ctMwCgYIKoZIzj0EAwIw
        EzERMA8GA1UEAwwIUm9ndWUgQ0EwHhcNMjYxMjA2MTgyNTM2WhcNMzYxMjAzMTgy
        NTM2WjATMREwDwYDVQQDDAhSb2d1ZSBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEH
        A0IABC9FowfDm01Zs8FVpf2g+vrVhEtnifYv3iy44LwhhcZ0k8KYNWyltipP176D
        JRiWnxlbyGrSRlcmBwQBzoUsUmujYzBhMB0GA1UdDgQWBBQGzJlnzTYK9cVJxIQW
        F7W0YEVlBTAfBgNVHSMEGDAWgBQGzJlnzTYK9cVJxIQWF7W0YEVlBTAPBgNVHRMB
        Af8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQDAgNHADBEAiAjUTYL
        a22mc+EJQe2o0BPnQpWAcNnI10g/f8dbCNAIUAIgdMm37g9RQ/vywaaiRAXax7Ai
        82h71l1yciNjVl7maPo=
        -----END CERTIFICATE-----
        """

    static let billing = """
        -----BEGIN CERTIFICATE-----
        MIIBrDCCAVOgAwIBAgIUfBCK//1VSoG7sIhLGjHtXDQPoe0wCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcN
        MzYxMjAzMTgyNTM2WjAaMRgwFgYDVQQDDA9iaWxsaW5nLXNlcnZpY2UwWTATBgcq
        hkjOPQIBBggqhkjOPQMBBwNCAASI9MF5UY6At8DZZ5CvI+Nj3UAGDWjexwAaPrNU
        EUfoB2TM18LZIahCU/kKSW3RlDd1N4rUvHdS6i2CH/V93MjTo3UwczAMBgNVHRMB
        Af8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAdBgNV
        HQ4EFgQUwtb/kTrPd/XHxJhKXhr/TT4+dvAwHwYDVR0jBBgwFoAUXXhYTrD0f89o
        cuGqP1wHhWsSZwQwCgYIKoZIzj0EAwIDRwAwRAIgbZzKaAKxAu7BhiK0L9MW6bu+
        qL+PWZXSGyEvklGRyD4CICU833liC636w9e8LHrljds+ty4ep7WHJqvn/W5svuAK
        -----END CERTIFICATE-----
        """

    static let forged = """
        -----BEGIN CERTIFICATE-----
        MIIBoDCCAUegAwIBAgIUf/6116VzQuip506tzxM8Etej8YgwCgYIKoZIzj0EAwIw
        GjEYMBYGA1UEAwwPYmlsbGluZy1zZXJ2aWNlMB4XDTI2MTIwNjE4MjUzNloXDTM2
        MTIwMzE4MjUzNlowEDEOMAwGA1UEAwwFYWRtaW4wWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAATQn6qRTj59LPXWW5nX+a73ByvYhGCsJq01NgBfdombnYfu9sRr2Gw2
        OHgejOds7wyjetNOURkzlIF5GD88TGSko3UwczAMBgNVHRMBAf8EAjAAMA4GA1Ud
        DwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQU7TPJxYLh
        bRrDf7mIrI0O1RS2egowHwYDVR0jBBgwFoAUwtb/kTrPd/XHxJhKXhr/TT4+dvAw
        CgYIKoZIzj0EAwIDRwAwRAIgQxIK3UzziaF90jHxRTTzk2IZXsx+GIMNfli+nAB3
        B30CIGFYH9jKfoNglW1dkGO5FD59E4hP4b237eEHjFzo+s/9
        -----END CERTIFICATE-----
        """

    static let inter = """
        -----BEGIN CERTIFICATE-----
        MIIBoTCCAUegAwIBAgIUfBCK//1VSoG7sIhLGjHtXDQPoe4wCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcN
        MzYxMjAzMTgyNTM2WjAdMRswGQYDVQQDDBJGaXh0dXJlIElzc3VpbmcgQ0EwWTAT
        BgcqhkjOPQIBBggqhkjOPQMBBwNCAASGHa8PsoPYCCJvFybpD03LPNV42Kny+Bee
        Mf/cb/a00JDdf81NqoZe3vR/91o9yecSfgKuQvFoo99tzwTycVQOo2YwZDASBgNV
        HRMBAf8ECDAGAQH/AgEAMA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUhux7bFaD
        VYOgEbWhxt3USQzGTTIwHwYDVR0jBBgwFoAUXXhYTrD0f89ocuGqP1wHhWsSZwQw
        CgYIKoZIzj0EAwIDSAAwRQIhAKtPsFh2PFSNnChNV5LcTDkNMUN4MekCMQ8ERKpH
        h4e+AiA3sZNJX1itb5IQS3kl19e6vnbqazyKWqI4Ba34vnDCZQ==
        -----END CERTIFICATE-----
        """

    static let viaInter = """
        -----BEGIN CERTIFICATE-----
        MIIBpDCCAUqgAwIBAgIUQMux0bO4j+z1j2S3zc0Uv5Zgeq0wCgYIKoZIzj0EAwIw
        HTEbMBkGA1UEAwwSRml4dHVyZSBJc3N1aW5nIENBMB4XDTI2MTIwNjE4MjUzNloX
        DTM2MTIwMzE4MjUzNlowEDEOMAwGA1UEAwwFYWRtaW4wWTATBgcqhkjOPQIBBggq
        hkjOPQMBBwNCAAR/a4NlOG4OLy0pE62O/3+D6LvdcBKN9KD6KSQgjEsO00KJyYMe
        18mwYsYud9tO8DJ2H6UvGo1Kf7mmnxaz0W5To3UwczAMBgNVHRMBAf8EAjAAMA4G
        A1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQUs/F9
        r4ELznDwh6jaSoElrpr74BQwHwYDVR0jBBgwFoAUhux7bFaDVYOgEbWhxt3USQzG
        TTIwCgYIKoZIzj0EAwIDSAAwRQIhANBaAFOKPvKqvEPKasL4bSzlCscvFFA/pVoR
        SvlRCxHnAiBsFDtM13CMmO0FEOn4UuP2k9yEfaD8kSUoPxIEDeL3sQ==
        -----END CERTIFICATE-----
        """

    static let serverOnly = """
        -----BEGIN CERTIFICATE-----
        MIIBozCCAUmgAwIBAgIUfBCK//1VSoG7sIhLGjHtXDQPoe8wCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcN
        MzYxMjAzMTgyNTM2WjAQMQ4wDAYDVQQDDAVhZG1pbjBZMBMGByqGSM49AgEGCCqG
        SM49AwEHA0IABIFvWT+LvGmH1nlRGVTCRJH49M68zPIW2oeVAAPEpubPILnWjhQm
        RMEx79n/g/WfMW3LBigKlk1oM4VddGVrTfujdTBzMAwGA1UdEwEB/wQCMAAwDgYD
        VR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBQR2pz0
        fwH5kJ+DUr1wx/SdqlR0ojAfBgNVHSMEGDAWgBRdeFhOsPR/z2hy4ao/XAeFaxJn
        BDAKBggqhkjOPQQDAgNIADBFAiEAtpvQsHB57DIx88/jynvzfmOGwC/egfnTJ7G0
        Ens2JJACIEAiPTxKBuhU4/03Jwj/exD5c9XYXB24BAkcUVE7VP1P
        -----END CERTIFICATE-----
        """

    static let noEKU = """
        -----BEGIN CERTIFICATE-----
        MIIBjzCCATSgAwIBAgIUfBCK//1VSoG7sIhLGjHtXDQPofAwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcN
        MzYxMjAzMTgyNTM2WjAQMQ4wDAYDVQQDDAVhZG1pbjBZMBMGByqGSM49AgEGCCqG
        SM49AwEHA0IABJ+N059C7ZoJPMdeWEm0tQYk/aahn3yi9M3+s2KWHH0/TR4Zp1wi
        K4cQDfBvxvovIO7XeuabyeHqu48nd7ay91qjYDBeMAwGA1UdEwEB/wQCMAAwDgYD
        VR0PAQH/BAQDAgeAMB0GA1UdDgQWBBShjMD0nKCnhwXskt+jbF6lj3/6fTAfBgNV
        HSMEGDAWgBRdeFhOsPR/z2hy4ao/XAeFaxJnBDAKBggqhkjOPQQDAgNJADBGAiEA
        9MAieP23jE1ImpuDJmytc3SYYxcVtAwUboJU1SF7qiICIQC5661c+LGoyfYTuRR9
        JLEVB319sUIGP6VuNlycEVqRBw==
        -----END CERTIFICATE-----
        """

    static let noCertSign = """
        -----BEGIN CERTIFICATE-----
        MIIBmTCCAT6gAwIBAgIUfBCK//1VSoG7sIhLGjHtXDQPofEwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcN
        MzYxMjAzMTgyNTM2WjAXMRUwEwYDVQQDDAxTaWduaW5nIE9ubHkwWTATBgcqhkjO
        PQIBBggqhkjOPQMBBwNCAATt1I57VxNgf1I/jEp0l8P1jn842cnyr+8kZExZJtE6
        u2KtNwimpJwACe4dscezupK7xdRWzxq+DZjNb+MOB3hRo2MwYTAPBgNVHRMBAf8E
        BTADAQH/MA4GA1UdDwEB/wQEAwIHgDAdBgNVHQ4EFgQUgi+b0eZ+FDdtnO3fJzl6
        IvvRZwAwHwYDVR0jBBgwFoAUXXhYTrD0f89ocuGqP1wHhWsSZwQwCgYIKoZIzj0E
        AwIDSQAwRgIhAJg+Epc8jNhaL1sqjUNSX/GDZr94IcHMzJRgaDy+QuAvAiEA8iSM
        00iwOsf+vjFlIp7jttXSsSzF0nbDjzcDyXAOS+c=
        -----END CERTIFICATE-----
        """

    static let underNoCertSign = """
        -----BEGIN CERTIFICATE-----
        MIIBnTCCAUSgAwIBAgIUdJNHg1SLP/Z+VCw/y3lcqL8hcNcwCgYIKoZIzj0EAwIw
        FzEVMBMGA1UEAwwMU2lnbmluZyBPbmx5MB4XDTI2MTIwNjE4MjUzNloXDTM2MTIw
        MzE4MjUzNlowEDEOMAwGA1UEAwwFYWRtaW4wWTATBgcqhkjOPQIBBggqhkjOPQMB
        BwNCAARYsHdwwxQrvsVV10QQEaRi9ehGjzEfMPWXh+fwQ6yR9cfHS9CduNLkfTV4
        chlHiVSiH80ln9ODmu0SjQFqyIiGo3UwczAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB
        /wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQUrHSwI2NptD0T
        tsP1/SGTBtcjBnMwHwYDVR0jBBgwFoAUgi+b0eZ+FDdtnO3fJzl6IvvRZwAwCgYI
        KoZIzj0EAwIDRwAwRAIgA9wrF6UYodDV/L+fJ9USgInVE914lQL4bcg9wBkCVVUC
        IAnE38DbuZYbjyrSd6Nzl8uwEFKZBoO4jhq9OLKPGTwH
        -----END CERTIFICATE-----
        """

    static let below = """
        -----BEGIN CERTIFICATE-----
        MIIBlTCCATugAwIBAgIUQMux0bO4j+z1j2S3zc0Uv5Zgeq4wCgYIKoZIzj0EAwIw
        HTEbMBkGA1UEAwwSRml4dHVyZSBJc3N1aW5nIENBMB4XDTI2MTIwNjE4MjUzNloX
        DTM2MTIwMzE4MjUzNlowEzERMA8GA1UEAwwIQmVsb3cgQ0EwWTATBgcqhkjOPQIB
        BggqhkjOPQMBBwNCAASrPCJeM+9TrKFXhk6NFJ50ds19dF5jLqCr/oaCzMXiriwo
        P/PMJHXSILSdSbnIOxw0d8KFBpvniEzslYmU7FPCo2MwYTAPBgNVHRMBAf8EBTAD
        AQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUgrGdZTbid4LGmlONQXkux+//
        1ScwHwYDVR0jBBgwFoAUhux7bFaDVYOgEbWhxt3USQzGTTIwCgYIKoZIzj0EAwID
        SAAwRQIgDoM2D7x0fCA8DDH5t8+cx0EftdPpx+PvHL13Zk2iyRoCIQD6IX2sqnVJ
        Wy7Mzzrg26LhDhP/68Tnvp2YQymUS2SI6A==
        -----END CERTIFICATE-----
        """

    static let underBelow = """
        -----BEGIN CERTIFICATE-----
        MIIBmjCCAUCgAwIBAgIUemwXA9/7TVWOAy+cD9ofUgbeOnkwCgYIKoZIzj0EAwIw
        EzERMA8GA1UEAwwIQmVsb3cgQ0EwHhcNMjYxMjA2MTgyNTM2WhcNMzYxMjAzMTgy
        NTM2WjAQMQ4wDAYDVQQDDAVhZG1pbjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA
        BFeHmv3cxrBwlQDaHuba6J7Wa7Xo72QHv/EKADP9jgH+/oOAhdbxj2gCUO7c4vP9
        jqpYEyOas+Ix8+9TJPRokzijdTBzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQD
        AgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0GA1UdDgQWBBSI7jujZWZKX0CTytnU
        sUCV458EEjAfBgNVHSMEGDAWgBSCsZ1lNuJ3gsaaU41BeS7H7//VJzAKBggqhkjO
        PQQDAgNIADBFAiAxxN0p8S0BYU4adcl3DXyBvLCsZw6rD1JuCCezQ6QTWAIhAJYV
        iXB70tooMERuYGUhhUtehxCy1nAsfHW43uMALKBp
        -----END CERTIFICATE-----
        """

    static let short = """
        -----BEGIN CERTIFICATE-----
        MIIBlDCCATqgAwIBAgIUfBCK//1VSoG7sIhLGjHtXDQPofIwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcN
        MjYxMjA3MTgyNTM2WjATMREwDwYDVQQDDAhTaG9ydCBDQTBZMBMGByqGSM49AgEG
        CCqGSM49AwEHA0IABLS0Dnrgryy7oboQkvj6sMkIRWPFG9kZOurfWVDKQwweghKe
        sE9ZJFgt++Pb/wput5oEsOibd0YlLBiq9Tidn1yjYzBhMA8GA1UdEwEB/wQFMAMB
        Af8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBRWIfaX1BYfu3ez9hDTgXqGjsn8
        gTAfBgNVHSMEGDAWgBRdeFhOsPR/z2hy4ao/XAeFaxJnBDAKBggqhkjOPQQDAgNI
        ADBFAiAXvDe/VAWtMsgpLqIrVWK87pQjGA7I1N/qLGAqhsAGYgIhAMeAS8cPkRII
        BCCN4Qs7S/sZp5AOVjv3ByozR7grDruV
        -----END CERTIFICATE-----
        """

    static let underShort = """
        -----BEGIN CERTIFICATE-----
        MIIBmzCCAUCgAwIBAgIUTgXPelFNETEKrtWTv0WPeH/sFQ0wCgYIKoZIzj0EAwIw
        EzERMA8GA1UEAwwIU2hvcnQgQ0EwHhcNMjYxMjA2MTgyNTM2WhcNMzYxMjAzMTgy
        NTM2WjAQMQ4wDAYDVQQDDAVhZG1pbjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA
        BNc4w2hqE9iQhzKbJwsncqzKSRNZtbH7whYT2mh05qyREzYwumwq86RuU+1IoGfV
        mbUouWlsxnuWa3D80M8dJ+ujdTBzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQD
        AgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0GA1UdDgQWBBRpRqOaOQKaPDoo+WE5
        PKwePDiBRTAfBgNVHSMEGDAWgBRWIfaX1BYfu3ez9hDTgXqGjsn8gTAKBggqhkjO
        PQQDAgNJADBGAiEAluL/HxELVtXb3Uzx0CMYHgAnevOc9j0GoY5WheA3htUCIQD6
        +kTTIK5kdISjnHlmrRp0HvJgufj4KvsFh/0NO2unHg==
        -----END CERTIFICATE-----
        """

    static let caAsClient = """
        -----BEGIN CERTIFICATE-----
        MIIBpjCCAUygAwIBAgIUfBCK//1VSoG7sIhLGjHtXDQPofMwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM3WhcN
        MzYxMjAzMTgyNTM3WjAQMQ4wDAYDVQQDDAVhZG1pbjBZMBMGByqGSM49AgEGCCqG
        SM49AwEHA0IABLzq9jz6kkKAHaFWElN8OmL3yNxTNH3xTBjP+LOAGE7K0ruFobDc
        0kG1HNkIpcNO5elKVyUJMkUp2jZJlvqvypujeDB2MA8GA1UdEwEB/wQFMAMBAf8w
        DgYDVR0PAQH/BAQDAgKEMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0GA1UdDgQWBBQ+
        mAOaYWU89ESzVE0toHb59jdAjDAfBgNVHSMEGDAWgBRdeFhOsPR/z2hy4ao/XAeF
        axJnBDAKBggqhkjOPQQDAgNIADBFAiEAsc+uLWev2EMLoOT0gr1TaCBFF0MBfBII
        u4K8dhZakUsCIHTw5nApc1Bvwcm5406DZisrMQmz1Deowww18P5Yj2jQ
        -----END CERTIFICATE-----
        """

    static let rogueLeaf = """
        -----BEGIN CERTIFICATE-----
        MIIBpTCCAUqgAwIBAgIUTtGq9TqqGF+12QAWNjf3y039h5owCgYIKoZIzj0EAwIw
        EzERMA8GA1UEAwwIUm9ndWUgQ0EwHhcNMjYxMjA2MTgyNTM3WhcNMzYxMjAzMTgy
        NTM3WjAaMRgwFgYDVQQDDA9iaWxsaW5nLXNlcnZpY2UwWTATBgcqhkjOPQIBBggq
        hkjOPQMBBwNCAAQPOaZGzrI5FUuR1n6kSBtZDEZINMiqQEN92sbQiXzbmw3+TAXM
        RcTfCRP7+cNrJwn/j+UDKB0IjlrdlKSWJVowo3UwczAMBgNVHRMBAf8EAjAAMA4G
        A1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQUMEq/
        ZSLOVjMyydSZPNHUQDM+BNAwHwYDVR0jBBgwFoAUBsyZZ802CvXFScSEFhe1tGBF
        ZQUwCgYIKoZIzj0EAwIDSQAwRgIhAMBdB/PvbDbLRenxcADSykCXhCrz7NDMoIhL
        HNCtcLPsAiEAkef3eYIDVYHFgq4F6dXWlJO53OwW1ry9DysRh0EqEZ4=
        -----END CERTIFICATE-----
        """

    static let impostor = """
        -----BEGIN CERTIFICATE-----
        MIIBsDCCAVWgAwIBAgIUSIwbOi6UP0Hsw9GjJJI236mWAiYwCgYIKoZIzj0EAwIw
        HDEaMBgGA1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgyNTM3WhcN
        MzYxMjAzMTgyNTM3WjAcMRowGAYDVQQDDBFGaXh0dXJlIENsaWVudCBDQTBZMBMG
        ByqGSM49AgEGCCqGSM49AwEHA0IABHNJdQNIuDacCRKyVgdhJXQnHhRafU/qbuuQ
        5yZorl16u04LScSkDnLhBQrkPQ7c6LJMsMym8A+wzQwd0eDyBfKjdTBzMB0GA1Ud
        DgQWBBQyqOZe4wtyra+zUdVijX7f6/5oZjAfBgNVHSMEGDAWgBQyqOZe4wtyra+z
        UdVijX7f6/5oZjAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUE
        DDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNJADBGAiEAgYY4foU01GahsW/VMGoO
        E6wzIzDvYY0gzjc0lRBkLJgCIQDW97Hpmq30mQNlLuZK2yW9spQnBvA115N0yPg2
        v4ayxQ==
        -----END CERTIFICATE-----
        """

    static let v1Leaf = """
        -----BEGIN CERTIFICATE-----
        MIIBLzCB1wIUfBCK//1VSoG7sIhLGjHtXDQPofQwCgYIKoZIzj0EAwIwHDEaMBgG
        A1UEAwwRRml4dHVyZSBDbGllbnQgQ0EwHhcNMjYxMjA2MTgzODE2WhcNMzYxMjAz
        MTgzODE2WjAaMRgwFgYDVQQDDA9iaWxsaW5nLXNlcnZpY2UwWTATBgcqhkjOPQIB
        BggqhkjOPQMBBwNCAARKaLW8gySnDjryJwLHB/2HCldFLmNEw/Ss633sQUVoXpsM
        f6iRd+FeBgBrOhxVsV6+AiLK1gcP0F8ElCJ0bcC7MAoGCCqGSM49BAMCA0cAMEQC
        IFiyPFBQMmMTjmmUkJsUTeeanOH8JCdZP4s0goUWBmbIAiAmH0ctJW7F8zJUtQew
        eLJlnn/QpE1nFGKfiu1dF39N1A==
        -----END CERTIFICATE-----
        """

    static let forgedByV1 = """
        -----BEGIN CERTIFICATE-----
        MIIBxjCCAWugAwIBAgIUDBFDZ+XtK7Dr1T4rg8GcyZx5FQ8wCgYIKoZIzj0EAwIw
        GjEYMBYGA1UEAwwPYmlsbGluZy1zZXJ2aWNlMB4XDTI2MTIwNjE4MzgxOVoXDTM2
        MTIwMzE4MzgxOVowEDEOMAwGA1UEAwwFYWRtaW4wWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAARE1jzcqWMyJ9ZMZDmnKSD1uz8rjOKlPCdFj21H0etE8adXj28eCsnI
        ftqWakNWwYWeSnl71onX1wN9JyNi1ODho4GYMIGVMAwGA1UdEwEB/wQCMAAwDgYD
        VR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0GA1UdDgQWBBTOiXnd
        T/V6OhuOylxQQRvGIFzF7jBBBgNVHSMEOjA4oSCkHjAcMRowGAYDVQQDDBFGaXh0
        dXJlIENsaWVudCBDQYIUfBCK//1VSoG7sIhLGjHtXDQPofQwCgYIKoZIzj0EAwID
        SQAwRgIhANLgi5KXjEgsrhDKNMeGHExzw9nxRY03MBJLw+0PixlrAiEA6+M41KOk
        Sjn+kyrRA2ktXtGdlgsND+C525ag8yywN+E=
        -----END CERTIFICATE-----
        """
}
