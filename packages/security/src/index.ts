export { seal, unseal, deriveKey, newKey, AuthenticationFailed, KEY_BYTES, type SealedBox } from './sealed-box.js';
export { workerTransportKey, sealForWorker, openSealedForWorker, type SealedForWorker, type WorkerTransportKey } from './sealed-transport.js';
export { ROLES, parseTokensFile, loadTokensFile, chooseTokensFile, authenticate, newToken, type Role, type TokenEntry, type Caller } from './api-tokens.js';
export { isAgeRecipient, looksAgeEncrypted, encryptingStream, decryptingStream, parseIdentityFile, loadIdentityFile, AgeDecryptError, AGE_MAGIC, type DecryptFailure } from './offline-recipients.js';
export { CREDENTIAL_NAMES, systemdCredential, credentialLabel, oneSource, AmbiguousSetting, type CredentialsEnv, type SettingSource } from './systemd-credentials.js';
