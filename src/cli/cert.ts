import type { Command } from 'commander';
import { CONNECTION_SETTINGS, type CertCliFlags, type CertCommandDeps } from './cert-etcd.js';
import { importCert, type CertImportFlags } from './cert-import.js';
import { importCa, type CaImportFlags } from './cert-import-ca.js';
import { listCerts } from './cert-list.js';

export type { CertCliFlags, CertCliSettings, CertCommandDeps } from './cert-etcd.js';
export type { CertListRow } from './cert-rows.js';

const VAULT_HELP = `
The vault is <etcd path>/certs/<name> in etcd. When KONTENA_LB_VAULT_KEY is set (in the
environment only, never as a flag), values are stored encrypted with it (AES-256-GCM), and the
load balancer, which needs the same key, decrypts them.`;

/** Adds `edgelb cert import` and `edgelb cert list`. */
export function registerCertCommands(program: Command, deps: CertCommandDeps): void {
  const cert = program.command('cert').description('manage the TLS certificates in the etcd vault').addHelpText('after', VAULT_HELP);

  const importCommand = cert
    .command('import <file>')
    .description('validate a PEM bundle (certificate, chain, private key) and store it in the vault')
    .option('--name <name>', 'vault name (letters, digits, _ . -); default: the first DNS name, * written as "wildcard"')
    .option('--allow-expired', 'store the bundle even though the certificate has expired');
  addEtcdFlags(importCommand);
  importCommand.addHelpText(
    'after',
    `
The bundle is checked first (it parses, the key matches the certificate, the chain is in order)
and refused with the reason when it is not valid. An existing entry of the same name is replaced.
${VAULT_HELP}

Examples:
  edgelb cert import www.example.com.pem
  edgelb cert import star.pem --name wildcard.example.com`,
  );
  importCommand.action(async (file: string, flags: CertImportFlags) => {
    await importCert(file, flags, deps);
  });

  const caCommand = cert
    .command('import-ca <file>')
    .description('validate a CA bundle (or a CRL bundle) and store it for client_ca, client_crl or backend_ca')
    .option('--name <name>', 'the name the services give (letters, digits, _ . -)')
    .option('--crl', 'a bundle of revocation lists (PEM X509 CRL), stored as client-crls/<name> for client_crl')
    .option('--backend', 'a CA bundle for backend_ca, stored as backend-cas/<name>');
  addEtcdFlags(caCommand);
  caCommand.addHelpText(
    'after',
    `
A CA bundle needs at least one CA certificate and no private key; a CRL bundle one X509 CRL or
more. Stored in the clear (public data) as <etcd path>/client-cas/<name> (client_ca),
client-crls/<name> (--crl) or backend-cas/<name> (--backend); an existing entry is replaced, and
the services naming it are reloaded with it.

Examples:
  edgelb cert import-ca partners-ca.pem --name partners
  edgelb cert import-ca partners-crl.pem --name partners --crl
  edgelb cert import-ca internal-ca.pem --name internal --backend`,
  );
  caCommand.action(async (file: string, flags: CaImportFlags) => {
    await importCa(file, flags, deps);
  });

  const listCommand = cert
    .command('list')
    .description('show the certificates in the vault: subject, names, expiry, status')
    .option('--json', 'print JSON instead of a table');
  addEtcdFlags(listCommand);
  listCommand.addHelpText(
    'after',
    `
STATUS is valid, expired, or invalid:<reason> (does not parse, key does not match, chain out of
order, cannot be decrypted, ...); an invalid entry is not served.

Certificates obtained over ACME are stored as certs/acme-<domain>. A second table shows each
ACME domain's state (<etcd path>/acme/state/<domain>): valid, pending (an order in progress) or
failing, the certificate's expiry, failures in a row, when the next attempt may happen and the
CA's last error; and which replica currently orders (the ACME leader). A domain still waiting
for its first certificate is listed with status pending or failing:<reason>.
${VAULT_HELP}`,
  );
  listCommand.action(async (flags: CertCliFlags & { json?: boolean }) => {
    await listCerts(flags, deps);
  });
}

function addEtcdFlags(command: Command): void {
  for (const setting of CONNECTION_SETTINGS) command.option(`--${setting.flag} <value>`, `${setting.help} [env ${setting.env}]`);
}
